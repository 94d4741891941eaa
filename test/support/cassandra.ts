import { execFile } from "node:child_process";
import { mkdirSync, rmSync, rmdirSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort } from "./services.js";

/**
 * Real Cassandra nodes for tests, run by scripts/cassandra/cassandra.sh. Every node keeps its own
 * conf/ and data/ under the repo's .tmp/; all share the jars in .tmp/cassandra/lib (fetched once).
 */

const run = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPT = join(REPO, "scripts/cassandra/cassandra.sh");
const TMP = join(REPO, ".tmp");
const LIB = join(TMP, "cassandra/lib");

const SHARED_DIR = join(TMP, "cassandra-test");
const SHARED_PORT = 19042;
const SHARED_STORAGE_PORT = 19070;

export interface CassandraNode {
  readonly contactPoint: string;
  readonly port: number;
  readonly dir: string;
  /** SIGTERM, waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

async function script(command: "fetch" | "start" | "stop" | "kill" | "status", env: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await run("bash", [SCRIPT, command], {
      env: { ...process.env, CASSANDRA_LIB: LIB, ...env },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`cassandra.sh ${command} failed: ${failed.stderr || failed.stdout || failed.message}`);
  }
}

function accepts(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, host);
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", () => done(false));
  });
}

/** A private node on free ports, in its own folder: for tests that stop, kill or restart it. */
export async function startCassandra(options: { heap?: string } = {}): Promise<CassandraNode> {
  const port = await freePort();
  let storagePort = await freePort();
  while (storagePort === port) storagePort = await freePort();
  const dir = join(TMP, `cassandra-${process.pid}-${port}`);
  const env = {
    CASSANDRA_DIR: dir,
    CASSANDRA_PORT: String(port),
    CASSANDRA_STORAGE_PORT: String(storagePort),
    CASSANDRA_HEAP: options.heap ?? "512m",
  };
  await script("start", env);
  return {
    contactPoint: `127.0.0.1:${port}`,
    port,
    dir,
    stop: async () => void (await script("stop", env)),
    kill: async () => void (await script("kill", env)),
    restart: async () => {
      await script("stop", env);
      await script("start", env);
    },
    dispose: async () => {
      await script("stop", env);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Serializes starting the shared node across vitest's worker processes. */
async function withStartLock<T>(work: () => Promise<T>): Promise<T> {
  const lock = `${SHARED_DIR}.lock`;
  mkdirSync(TMP, { recursive: true });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      // A lock left by a runner that died mid-start.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmdirSync(lock);
      } catch {
        // Removed by its owner meanwhile.
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((done) => setTimeout(done, 200));
    }
  }
  try {
    return await work();
  } finally {
    rmdirSync(lock);
  }
}

let shared: Promise<{ contactPoint: string; port: number }> | undefined;

const SHARED_ENV = {
  CASSANDRA_DIR: SHARED_DIR,
  CASSANDRA_PORT: String(SHARED_PORT),
  CASSANDRA_STORAGE_PORT: String(SHARED_STORAGE_PORT),
  CASSANDRA_HEAP: "1g",
};

/** Whether the shared node's port accepts connections (whoever started it). */
export function sharedCassandraRunning(): Promise<boolean> {
  return accepts(SHARED_PORT);
}

/** Stops the shared node under .tmp/cassandra-test (nothing if it does not run). */
export async function stopSharedCassandra(): Promise<string> {
  return script("stop", SHARED_ENV);
}

/**
 * The one node the whole test run shares. CHAT_TEST_CASSANDRA (`host:port`) names one started
 * beforehand (CI, or a developer keeping one between runs); otherwise a node under
 * .tmp/cassandra-test on port 19042 is started if nothing listens there yet, and the run that
 * started it stops it at the end (cassandra-lifecycle.ts).
 */
export function sharedCassandra(): Promise<{ contactPoint: string; port: number }> {
  shared ??= (async () => {
    const given = process.env.CHAT_TEST_CASSANDRA;
    if (given) {
      const match = /^(.+):(\d+)$/.exec(given);
      if (!match) throw new Error(`CHAT_TEST_CASSANDRA must be host:port, got "${given}"`);
      return { contactPoint: given, port: Number(match[2]) };
    }
    const node = { contactPoint: `127.0.0.1:${SHARED_PORT}`, port: SHARED_PORT };
    if (await accepts(SHARED_PORT)) return node;
    await withStartLock(async () => {
      if (await accepts(SHARED_PORT)) return;
      await script("start", SHARED_ENV);
    });
    return node;
  })();
  shared.catch(() => (shared = undefined));
  return shared;
}
