import { fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startNats, startRedis, waitForPort } from "../test/support/services.js";
import type { ServerKind } from "./protocol.js";

const ROOT = resolve(import.meta.dirname, "..");
const TICKS_PER_SECOND = 100;

/** A server under test, its own process, with what the bench reads of it. */
export interface ServerUnderTest {
  readonly kind: ServerKind;
  /** ws://… or http://… */
  readonly url: string;
  readonly pid: number;
  /** V8 heap in use (bytes). */
  heapUsed(): Promise<number>;
  /** The longest event-loop delay (ms, resolution included) since the previous call; the call starts a new period. */
  maxLoopDelayMs(): Promise<number>;
  stop(): Promise<void>;
}

/** CPU time (user + system) the process has used so far, in µs, from /proc (10 ms resolution). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name, which may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match![1]) * 1024;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveExit) => child.once("exit", () => resolveExit()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  const done = exited(child);
  child.kill("SIGKILL");
  await done;
}

/** Forks a TypeScript module with an IPC channel. */
export function forkTs(path: string, execArgv: string[] = []): ChildProcess {
  return fork(join(ROOT, path), [], { execArgv: [...execArgv, "--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

const RELAYS: Record<RelayKind, string> = {
  ws: "bench/baselines/ws-relay.ts",
  socketio: "bench/baselines/socketio-relay.ts",
  "graphql-ws": "bench/baselines/graphql-ws-relay.ts",
};

export type RelayKind = Exclude<ServerKind, "chat">;

/** Asks a relay over IPC (baselines/probe.ts) and waits for its answer of the same type. */
function probe<T>(child: ChildProcess, type: string, field: string): Promise<T> {
  return new Promise((resolveAnswer) => {
    const onMessage = (message: Record<string, unknown>) => {
      if (message.type !== type) return;
      child.off("message", onMessage);
      resolveAnswer(message[field] as T);
    };
    child.on("message", onMessage);
    child.send({ type });
  });
}

export async function startRelay(kind: RelayKind): Promise<ServerUnderTest> {
  const child = forkTs(RELAYS[kind]);
  const port = await new Promise<number>((resolvePort, reject) => {
    child.on("message", (message: { type: string; port?: number }) => {
      if (message.type === "listening") resolvePort(message.port!);
    });
    child.once("exit", (code) => reject(new Error(`${kind} relay exited (${code})`)));
  });
  return {
    kind,
    url: `${kind === "socketio" ? "http" : "ws"}://127.0.0.1:${port}`,
    pid: child.pid!,
    heapUsed: () => probe<number>(child, "heap", "heapUsed"),
    maxLoopDelayMs: () => probe<number>(child, "loop", "maxDelayMs"),
    stop: () => stopChild(child),
  };
}

export interface ChatServer extends ServerUnderTest {
  readonly mode: "embedded" | "cluster";
}

export interface ClusterServices {
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** Our own nats-server and redis-server, and a keyspace of our own on the Cassandra node. */
export async function startClusterServices(cassandra: string): Promise<ClusterServices> {
  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const keyspace = `chat_bench_${randomBytes(4).toString("hex")}`;
  return {
    env: {
      CHAT_STORE: `cassandra://${cassandra}/${keyspace}`,
      CHAT_BUS: nats.url,
      CHAT_PRESENCE: redis.url,
      CHAT_TOKEN_SECRET: randomBytes(32).toString("hex"),
    },
    async stop() {
      // nats-server exits 0 on SIGINT (1 on SIGTERM, which would print its whole log).
      await nats.stop("SIGINT");
      await Promise.all([nats.dispose(), redis.dispose()]);
      const { Client } = (await import("cassandra-driver")).default;
      const [host, port] = cassandra.split(":");
      const client = new Client({ contactPoints: [host!], protocolOptions: { port: Number(port) }, localDataCenter: "datacenter1" });
      try {
        await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      } finally {
        await client.shutdown();
      }
    },
  };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)`, "m").exec(text);
  if (!match) throw new Error(`the gateway's /metrics has no ${name}`);
  return Number(match[1]);
}

/**
 * The gateway as `npm start` runs it, on a fresh data directory. With `profileDir` it writes a V8
 * CPU profile there when it stops (SIGTERM, so it exits by itself and the profile is written).
 */
export async function startGateway(mode: "embedded" | "cluster", env: Record<string, string> = {}, profileDir?: string): Promise<ChatServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "chat-bench-"));
  const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, ["--max-semi-space-size=64", ...profile, "--import", "tsx", join(ROOT, "gateway/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      CHAT_HOST: "127.0.0.1",
      CHAT_PORT: String(port),
      CHAT_DATA_DIR: dataDir,
      CHAT_PASSWORD_COST: "10",
      CHAT_SEND_RATE: "1000000",
      CHAT_SEND_BURST: "1000000",
      CHAT_GROUP_MAX_MEMBERS: "1000",
      CHAT_ACCESS_TOKEN_TTL_SECONDS: "86400",
      // A stalled benchmark device must not be cut off mid-step; its lag shows in the latency instead.
      CHAT_OUTBOUND_LIMIT: "1000000",
      CHAT_LOG_LEVEL: "info",
      ...env,
    },
    // The log (one line per accepted message at info, as in production) is written and thrown away.
    stdio: ["ignore", "ignore", "inherit"],
  });
  const failed = exited(child).then(() => {
    throw new Error(`the gateway exited (${child.exitCode}) before listening`);
  });
  await Promise.race([waitForPort(port, 120_000), failed]);
  failed.catch(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  return {
    kind: "chat",
    mode,
    url,
    pid: child.pid!,
    heapUsed: async () => metric(url, "nodejs_heap_size_used_bytes"),
    // prom-client (15.1.3, lib/metrics/eventLoopLag.js) resets its delay histogram at every scrape, so
    // this is the longest delay since the previous scrape; it samples every 10 ms (its default
    // eventLoopMonitoringPrecision, which gateway/metrics.ts keeps). Nothing else scrapes the bench's gateway.
    maxLoopDelayMs: async () => (await metric(url, "nodejs_eventloop_lag_max_seconds")) * 1000,
    async stop() {
      if (profileDir) {
        const done = exited(child);
        child.kill("SIGTERM");
        await done;
      } else await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
