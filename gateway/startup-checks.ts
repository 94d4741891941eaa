import { accessSync, constants, mkdirSync } from "node:fs";
import { connect } from "node:net";
import { CONFIG_FILE_ENV, SETTINGS, type GatewayConfig } from "./config.js";

/**
 * Checks made before the gateway opens anything, so that a mistake in how it is started ends in one
 * line naming the setting, what was tried and what to do, instead of a driver's stack trace (or, for
 * Redis, a gateway that starts and retries forever).
 */
export class StartupError extends Error {
  override readonly name = "StartupError";
}

/** Flags the gateway takes; every setting is an environment variable (or a config file entry). */
const FLAGS = new Set(["--help", "-h", "--config"]);

/**
 * Variables with the settings' prefix that belong to something else: the terminal client's server
 * address, and the test and benchmark harnesses' own.
 */
const NOT_SETTINGS = [/^CHAT_URL$/, /^CHAT_TEST_/, /^CHAT_BENCH_/];

const SETTING_NAMES = [...SETTINGS.map((setting) => setting.env), CONFIG_FILE_ENV];

/** Refuses an argument that is not a flag the gateway takes; `--port 9000` names CHAT_PORT=9000. */
export function checkArguments(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--config") {
      i++;
      continue;
    }
    if (FLAGS.has(arg) || arg.startsWith("--config=")) continue;
    const [flag, inlineValue] = arg.split("=", 2) as [string, string | undefined];
    const env = `CHAT_${flag.replace(/^-+/, "").replace(/-/g, "_").toUpperCase()}`;
    const setting = closest(env, SETTING_NAMES);
    const value = inlineValue ?? (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("-") ? argv[i + 1] : "...");
    const hint = setting && flag.startsWith("-") ? `; settings are environment variables: ${setting}=${value} npm start` : "";
    throw new StartupError(`unknown argument "${arg}": the gateway takes only --help and --config <file>${hint}`);
  }
}

/** Refuses a CHAT_* variable that is no setting, naming the closest one (a typo would otherwise be ignored). */
export function checkEnvironment(env: NodeJS.ProcessEnv): void {
  const known = new Set(SETTING_NAMES);
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("CHAT_") || known.has(name) || NOT_SETTINGS.some((pattern) => pattern.test(name))) continue;
    const suggestion = closest(name, SETTING_NAMES);
    throw new StartupError(`${name} is not a setting${suggestion ? `; did you mean ${suggestion}?` : ""}`);
  }
}

/** The data directory exists (or can be made) and is readable and writable. */
export function checkDataDir(config: Pick<GatewayConfig, "dataDir">): void {
  try {
    mkdirSync(config.dataDir, { recursive: true });
    accessSync(config.dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StartupError(`CHAT_DATA_DIR=${config.dataDir}: cannot create or write this directory (${code}); point CHAT_DATA_DIR at a writable directory`);
  }
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * Every configured Cassandra, NATS and Redis answers a TCP connection. Cassandra needs one contact
 * point of several; the drivers find the rest of the cluster themselves.
 */
export async function checkServices(config: Pick<GatewayConfig, "storeUrl" | "busUrl" | "presenceUrl">, timeoutMs = 3_000): Promise<void> {
  const checks: { env: string; url: string; endpoints: Endpoint[]; what: string; otherwise: string }[] = [];
  if (config.storeUrl.startsWith("cassandra://")) {
    const hosts = config.storeUrl.slice("cassandra://".length).split(/[/?]/)[0]!;
    checks.push({ env: "CHAT_STORE", url: config.storeUrl, endpoints: hosts.split(",").map((host) => endpoint(host, 9042)), what: "Cassandra", otherwise: "sqlite:<file> runs without Cassandra" });
  }
  if (config.busUrl.startsWith("nats://")) {
    checks.push({ env: "CHAT_BUS", url: config.busUrl, endpoints: [endpoint(new URL(config.busUrl).host, 4222)], what: "nats-server", otherwise: "memory: runs a single gateway without NATS" });
  }
  if (config.presenceUrl.startsWith("redis://")) {
    checks.push({ env: "CHAT_PRESENCE", url: config.presenceUrl, endpoints: [endpoint(new URL(config.presenceUrl).host, 6379)], what: "redis-server", otherwise: "memory: runs a single gateway without Redis" });
  }
  await Promise.all(
    checks.map(async (check) => {
      const failures = await Promise.all(check.endpoints.map((target) => reach(target, timeoutMs)));
      if (failures.some((failure) => failure === undefined)) return;
      const tried = check.endpoints.map((target, i) => `${target.host}:${target.port} (${failures[i]})`).join(", ");
      throw new StartupError(`${check.env}=${check.url}: nothing accepts connections at ${tried}; start ${check.what} there or fix ${check.env} (${check.otherwise})`);
    }),
  );
}

/** What a failed start-up says: the error's one line for the ones we expect, else name and message. */
export function describeStartupFailure(error: unknown, config: Pick<GatewayConfig, "host" | "port">): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") {
    return `CHAT_PORT=${config.port}: ${config.host}:${config.port} is already in use by another process; stop it or choose another port (CHAT_PORT=0 picks a free one)`;
  }
  if (code === "EACCES" && (error as { syscall?: string }).syscall === "listen") {
    return `CHAT_PORT=${config.port}: not allowed to listen on ${config.host}:${config.port} (EACCES); ports below 1024 need privileges, choose a higher one`;
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
    return `CHAT_HOST=${config.host}: cannot listen on this address (${code}); use an address of this machine, such as 127.0.0.1 or 0.0.0.0`;
  }
  if (error instanceof StartupError) return error.message;
  const failure = error instanceof Error ? error : new Error(String(error));
  return `start-up failed: ${failure.name}: ${failure.message.split("\n")[0]}`;
}

function endpoint(hostPort: string, defaultPort: number): Endpoint {
  const match = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(hostPort);
  return { host: match?.[1] || "127.0.0.1", port: match?.[2] ? Number(match[2]) : defaultPort };
}

/** undefined when the endpoint accepts a connection, else why not. */
function reach(target: Endpoint, timeoutMs: number): Promise<string | undefined> {
  return new Promise((done) => {
    const socket = connect(target.port, target.host);
    const timer = setTimeout(() => {
      socket.destroy();
      done(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      done(undefined);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done(error.code ?? error.message);
    });
  });
}

/** The candidate within a third of the name's length in edits, if any. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
