import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const ROOT = resolve(import.meta.dirname, "../..");

export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly dbPath: string;
  /** Every log line the process printed, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly child: ChildProcess;
  /** Sends the signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly dataDir?: string;
  readonly env?: Record<string, string>;
  readonly port?: number;
  /** Extra flags for node, e.g. the `--max-semi-space-size` that `npm start` uses. */
  readonly nodeArgs?: readonly string[];
}

/** Starts the real gateway (`gateway/main.ts`) as its own process, as `npm start` does. */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "chat-test-"));
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), "--import", "tsx", join(ROOT, "gateway/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      CHAT_HOST: "127.0.0.1",
      CHAT_PORT: String(options.port ?? 0),
      CHAT_DATA_DIR: dataDir,
      // Tests sign up many users: a cheaper KDF keeps them fast; the default is 15.
      CHAT_PASSWORD_COST: "10",
      CHAT_LOG_LEVEL: "info",
      // Tests push thousands of messages per second through one user; the flood test sets its own limit.
      CHAT_SEND_RATE: "1000000",
      CHAT_SEND_BURST: "1000000",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  const port = await new Promise<number>((resolvePort, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.event === "listening") resolvePort(entry.port as number);
      } catch {
        logs.push({ unparsed: line });
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    dbPath: join(dataDir, "chat.db"),
    logs,
    child,
    kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
