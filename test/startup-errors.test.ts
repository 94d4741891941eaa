import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir } from "./support/server-process.js";
import { freePort } from "./support/services.js";

/**
 * How the gateway fails to start when it is started wrongly: exit code 2 and one line on stderr that
 * names the setting and what to do, never a stack trace.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

let dataDir: string;
beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), "chat-startup-"));
});
afterAll(() => removeDir(dataDir));

interface Outcome {
  readonly code: number | null;
  readonly stderr: string;
}

function startGateway(env: Record<string, string>, args: readonly string[] = []): Promise<Outcome> {
  // The caller's CHAT_* variables would change what is checked; only the harness's own stay.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CHAT_") || name.startsWith("CHAT_TEST_")));
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "gateway/main.ts", ...args],
      { cwd: ROOT, env: { ...inherited, CHAT_PORT: "0", CHAT_DATA_DIR: dataDir, ...env }, timeout: 30_000 },
      (_error, _stdout, stderr) => done({ code: child.exitCode, stderr }),
    );
  });
}

function expectOneLine(outcome: Outcome, pattern: RegExp): void {
  expect(outcome.code, outcome.stderr).toBe(2);
  expect(outcome.stderr).not.toMatch(/^\s+at /m);
  const lines = outcome.stderr.trimEnd().split("\n");
  expect(lines[0]).toMatch(pattern);
  // A configuration mistake also points at --help; nothing else follows.
  expect(lines.slice(1).filter((line) => line !== "Run with --help to list every setting.")).toEqual([]);
}

/** A port on which nothing listens. */
const closedPort = freePort;

describe.concurrent("start-up errors", () => {
  it("an unreachable Cassandra names CHAT_STORE and the address tried", async () => {
    const port = await closedPort();
    const outcome = await startGateway({ CHAT_STORE: `cassandra://127.0.0.1:${port}/chat` });
    expectOneLine(outcome, new RegExp(`^CHAT_STORE=cassandra://127\\.0\\.0\\.1:${port}/chat: nothing accepts connections at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); start Cassandra there or fix CHAT_STORE`));
  });

  it("an unreachable NATS names CHAT_BUS", async () => {
    const port = await closedPort();
    const outcome = await startGateway({ CHAT_BUS: `nats://127.0.0.1:${port}` });
    expectOneLine(outcome, new RegExp(`^CHAT_BUS=nats://127\\.0\\.0\\.1:${port}: nothing accepts connections at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); start nats-server there`));
  });

  it("an unreachable Redis names CHAT_PRESENCE (its client would otherwise retry forever)", async () => {
    const port = await closedPort();
    const outcome = await startGateway({ CHAT_PRESENCE: `redis://127.0.0.1:${port}` });
    expectOneLine(outcome, new RegExp(`^CHAT_PRESENCE=redis://127\\.0\\.0\\.1:${port}: nothing accepts connections at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); start redis-server there`));
  });

  it("a port in use names CHAT_PORT and how to pick another", async () => {
    const taken: Server = createServer();
    await new Promise<void>((listening) => taken.listen(0, "127.0.0.1", listening));
    const port = (taken.address() as { port: number }).port;
    try {
      const outcome = await startGateway({ CHAT_PORT: String(port) });
      expectOneLine(outcome, new RegExp(`^CHAT_PORT=${port}: 127\\.0\\.0\\.1:${port} is already in use by another process; stop it or choose another port`));
    } finally {
      await new Promise((closed) => taken.close(closed));
    }
  });

  it("a data directory that cannot be made names CHAT_DATA_DIR", async () => {
    const file = join(dataDir, "a-file");
    writeFileSync(file, "");
    const outcome = await startGateway({ CHAT_DATA_DIR: join(file, "data") });
    expectOneLine(outcome, /^CHAT_DATA_DIR=.*a-file\/data: cannot create or write this directory \(ENOTDIR\); point CHAT_DATA_DIR at a writable directory$/);
  });

  it("a mistyped variable names the setting it is closest to", async () => {
    const outcome = await startGateway({ CHAT_PROT: "1" });
    expectOneLine(outcome, /^configuration error: CHAT_PROT is not a setting; did you mean CHAT_PORT\?$/);
  });

  it("a command-line flag says settings are variables and gives the one it meant", async () => {
    const outcome = await startGateway({}, ["--port", "18102"]);
    expectOneLine(outcome, /^configuration error: unknown argument "--port": the gateway takes only --help and --config <file>; settings are environment variables: CHAT_PORT=18102 npm start$/);
    const inline = await startGateway({}, ["--send-rate=5"]);
    expectOneLine(inline, /unknown argument "--send-rate=5".*CHAT_SEND_RATE=5 npm start$/);
  });
});
