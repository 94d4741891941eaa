import { spawn, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";

const ROOT = resolve(import.meta.dirname, "..");
const EXAMPLE = "examples/graphql-client";
const BIN = (name: string) => resolve(ROOT, "node_modules", ".bin", name);

/** Runs the example against a gateway; its last line of output is a JSON summary of what it saw. */
function runExample(baseUrl: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--import", "tsx", `${EXAMPLE}/src/main.ts`, baseUrl], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

const EXPECTED = {
  duplicate: true,
  live: ["one", "two"],
  resumed: ["three", "four"],
  backward: ["one", "two", "three", "four"],
  olderHasPrevious: false,
  forward: ["one", "two", "three"],
  forwardHasNext: true,
};

describe("the integrator example (graphql-codegen client preset against the checked-in SDL)", () => {
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const server of servers) {
      await server.kill("SIGTERM");
      removeDir(server.dataDir);
    }
  });

  it("is generated from the current schema and its documents, and compiles under tsc --strict", () => {
    const codegen = spawnSync(BIN("graphql-codegen"), ["--config", `${EXAMPLE}/codegen.ts`, "--check"], { cwd: ROOT, encoding: "utf8" });
    expect(codegen.status, `${codegen.stdout}\n${codegen.stderr}\n(run: npm run graphql:example)`).toBe(0);
    const tsc = spawnSync(BIN("tsc"), ["-p", `${EXAMPLE}/tsconfig.json`], { cwd: ROOT, encoding: "utf8" });
    expect(tsc.status, tsc.stdout).toBe(0);
  });

  it("logs in, sends (a retry included), receives live, resumes from its cursors and pages history both ways against a real gateway", async () => {
    const server = await startServer();
    servers.push(server);
    const run = await runExample(server.url);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual(EXPECTED);
  });

  it("runs the same with document ids alone on a gateway that accepts its persisted documents only", async () => {
    const server = await startServer({
      env: { CHAT_GRAPHQL_TRUSTED_DOCUMENTS: "only", CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE: resolve(ROOT, EXAMPLE, "gql", "persisted-documents.json") },
    });
    servers.push(server);
    const run = await runExample(server.url, { CHAT_EXAMPLE_PERSISTED: "1" });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual(EXPECTED);
  });
});
