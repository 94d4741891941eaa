import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { measureCatchUp, checkLeanAgainstStock } from "./catch-up.js";
import { chatFixture, fanoutOf, relayFixture, signUpUsers, type Fixture, type Workload } from "./fixture.js";
import { LOOP_RESOLUTION_MS, stallMs } from "./loop-stall.js";
import type { ClientKind, FromGenerator, ServerKind, StepResult, ToGenerator } from "./protocol.js";
import { writeReport, type BenchResults, type IdleResult, type Series, type Step } from "./report.js";
import { cpuMicros, forkTs, rssBytes, startClusterServices, startGateway, startRelay, type ClusterServices, type ServerUnderTest } from "./servers.js";

const HELP = `npm run bench -- [options]

Load-tests the gateway against three baselines measured in the same run (a raw ws relay, a
Socket.IO relay and a graphql-ws relay), each its own process, driven by a load generator process.
Writes bench/results/<time>.json, latest.json, latest.md and latest.png.

  --quick                 shorter steps, 1:1 only (over Connect and over GraphQL), 2,000 idle connections
  --mode LIST             embedded, cluster or embedded,cluster (default: embedded,cluster, leaving
                          cluster out when no Cassandra answers; cluster runs 1:1 with 100 B on 100
                          devices, no catch-up, unless --cluster-full)
  --cluster-full          every workload, payload and the catch-up in cluster mode too
  --workloads LIST        direct,group10,group500,graphql (default: all four; graphql is 1:1 over
                          graphql-ws, run on the gateway and the graphql-ws relay only;
                          --workloads= measures only idle memory)
  --payloads LIST         bytes per message (default: 100,1024; 1024 is run for 1:1 only)
  --servers LIST          ws,socketio,graphql-ws,chat (default: all)
  --step-seconds N        seconds per rate step (default 3)
  --idle LIST             idle connections to measure memory at (default 15000, one server process;
                          0 skips); a count over 15,000 is spread over several server and generator
                          processes (--idle 50000: 4 of each)
  --users N               devices in the throughput workloads, a multiple of 10 (default 500)
  --profile               the gateways write V8 CPU profiles to bench/results/profiles/ (open them in
                          Chrome DevTools or speedscope)
  --report FILE           only re-render latest.md and latest.png from a results JSON (also writes
                          it as latest.json)
  --cassandra HOST:PORT   Cassandra for cluster mode (default $CHAT_BENCH_CASSANDRA or 127.0.0.1:19142)
`;

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    mode: { type: "string" },
    "cluster-full": { type: "boolean", default: false },
    workloads: { type: "string" },
    payloads: { type: "string", default: "100,1024" },
    servers: { type: "string", default: "ws,socketio,graphql-ws,chat" },
    "step-seconds": { type: "string" },
    idle: { type: "string" },
    users: { type: "string", default: "500" },
    profile: { type: "boolean", default: false },
    report: { type: "string" },
    cassandra: { type: "string", default: process.env.CHAT_BENCH_CASSANDRA ?? "127.0.0.1:19142" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (args.report) {
  const written = await writeReport(JSON.parse(readFileSync(args.report, "utf8")) as BenchResults);
  process.stdout.write(`wrote ${written.join(", ")}\n`);
  process.exit(0);
}

const list = (value: string) => value.split(",").map((item) => item.trim()).filter(Boolean);
const modes = list(args.mode ?? "embedded,cluster") as ("embedded" | "cluster")[];
const workloads = list(args.workloads ?? (args.quick ? "direct,graphql" : "direct,group10,group500,graphql")) as Workload[];
const payloads = list(args.payloads).map(Number);
const serverKinds = list(args.servers) as ServerKind[];
const stepSeconds = Number(args["step-seconds"] ?? (args.quick ? 2 : 3));
const idleCounts = list(args.idle ?? (args.quick ? "2000" : "15000")).map(Number).filter((count) => count > 0);
const users = Number(args.users);
if (users % 10 !== 0 || users < 20) throw new Error("--users must be a multiple of 10, at least 20");

/** Delivered messages per second offered at each step; the send rate is this over the fan-out. */
const RATES = [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000];
/** Cassandra's conditional writes put the cluster's knee far below the embedded one: start lower. */
const CLUSTER_RATES = [30, 60, 125, 250, 500, 1000, 2000];
const P99_LIMIT_MS = 100;
const DELIVERED_MIN = 0.999;
/** The longest event-loop stall allowed at half the knee. */
const STALL_LIMIT_MS = 50;
const PER_PROCESS_CONNECTIONS = 15_000;
const PROFILES = resolve(import.meta.dirname, "results/profiles");

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;
const log = (line: string) => process.stdout.write(`${elapsed()} ${line}\n`);

class Generator {
  private readonly waiters: ((message: FromGenerator) => void)[] = [];
  readonly child: ChildProcess;

  constructor() {
    this.child = forkTs("bench/generator.ts", ["--max-semi-space-size=64"]);
    this.child.on("message", (message: FromGenerator) => this.waiters.shift()?.(message));
  }

  async ask(message: ToGenerator): Promise<FromGenerator> {
    const answer = await new Promise<FromGenerator>((resolve) => {
      this.waiters.push(resolve);
      this.child.send(message);
    });
    if (answer.type === "error") throw new Error(`generator: ${answer.message}`);
    return answer;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }
}

const running = new Set<{ stop(): Promise<void> }>();
function track<T extends { stop(): Promise<void> }>(thing: T): T {
  running.add(thing);
  return thing;
}
async function stop(thing: { stop(): Promise<void> }): Promise<void> {
  running.delete(thing);
  await thing.stop();
}
const stopAll = async () => {
  await Promise.allSettled([...running].map((thing) => thing.stop()));
  running.clear();
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

/** The client each workload's devices use on each server; absent: that server does not run the workload. */
function clientFor(kind: ServerKind, workload: Workload): ClientKind | undefined {
  if (workload === "graphql") return kind === "chat" ? "chat-graphql" : kind === "graphql-ws" ? "graphql-ws" : undefined;
  return kind === "graphql-ws" ? undefined : kind;
}

const CLIENT_NAMES: Record<ClientKind, string> = { ws: "ws", socketio: "Socket.IO", "graphql-ws": "graphql-ws", chat: "Connect (HTTP/2)", "chat-graphql": "graphql-ws" };

/** The (workload, payload) series a server runs: 1 KB for 1:1 only, to keep the standard set short. */
function plan(kind: ServerKind, onlyDirect100: boolean): [Workload, number][] {
  if (onlyDirect100) return [["direct", 100]];
  return workloads
    .filter((workload) => clientFor(kind, workload))
    .flatMap((workload) => (workload === "direct" ? payloads : payloads.slice(0, 1)).map((bytes): [Workload, number] => [workload, bytes]));
}

/** Whether anything accepts a TCP connection at `host:port` (within 2 s). */
function listening(address: string): Promise<boolean> {
  const [host, port] = address.split(":");
  return new Promise((resolveProbe) => {
    const socket = connect({ host, port: Number(port), timeout: 2000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolveProbe(answer);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 15 s) until the server has worked off any backlog of the previous step. */
async function settle(pid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const before = cpuMicros(pid);
    await sleep(500);
    if (cpuMicros(pid) - before < 100_000) return;
  }
}

let stepCounter = 0;

/** `tries` is 2 for the retry of a failed step, 0 for the extra step at half the knee (never retried). */
async function measureStep(server: ServerUnderTest, name: string, generator: Generator, workload: Workload, entries: Fixture["entries"][Workload], rate: number, payloadBytes: number, tries: number): Promise<Step> {
  const sendRate = rate / fanoutOf(entries);
  await settle(server.pid);
  // Starts the server's delay period: what it reports next is this step's (and its drain's) longest.
  await server.maxLoopDelayMs();
  const cpuBefore = cpuMicros(server.pid);
  const wallBefore = performance.now();
  const answer = await generator.ask({ type: "step", stepId: ++stepCounter, rate: sendRate, seconds: stepSeconds, payloadBytes, entries, drainMs: 3000 });
  const result = (answer as { result: StepResult }).result;
  const cpu = cpuMicros(server.pid) - cpuBefore;
  const wall = (performance.now() - wallBefore) / 1000;
  const serverStallMs = stallMs(await server.maxLoopDelayMs());
  const deliveredShare = result.expected ? result.delivered / result.expected : 0;
  const step: Step = {
    offered: rate,
    sendRate,
    delivered: result.delivered,
    deliveredPerSecond: result.delivered / (result.sent / sendRate),
    deliveredShare,
    p50: result.p50,
    p99: result.p99,
    p999: result.p999,
    max: result.max,
    rejected: result.rejected,
    serverCpuMicrosPerMessage: result.delivered ? cpu / result.delivered : Number.NaN,
    serverCpuShare: cpu / 1e6 / wall,
    generatorCpuShare: result.generatorCpu,
    serverStallMs,
    generatorStallMs: result.generatorStallMs,
    tries,
    pass: deliveredShare >= DELIVERED_MIN && result.p99 <= P99_LIMIT_MS && result.rejected === 0,
  };
  log(
    `${name.padEnd(14)} ${workload.padEnd(8)} ${String(payloadBytes).padStart(4)} B  offered ${String(rate).padStart(6)}/s  ` +
      `delivered ${(deliveredShare * 100).toFixed(2).padStart(6)}% ${step.deliveredPerSecond.toFixed(0).padStart(6)}/s  ` +
      `p50 ${step.p50.toFixed(1).padStart(7)} ms  p99 ${step.p99.toFixed(1).padStart(7)} ms  p99.9 ${step.p999.toFixed(1).padStart(7)} ms  ` +
      `server ${step.serverCpuMicrosPerMessage.toFixed(1).padStart(6)} µs/msg ${(step.serverCpuShare * 100).toFixed(0).padStart(3)}% cpu stall ${serverStallMs.toFixed(0).padStart(4)} ms  ` +
      `generator ${(step.generatorCpuShare * 100).toFixed(0).padStart(3)}% cpu stall ${step.generatorStallMs.toFixed(0).padStart(4)} ms  ` +
      (tries === 0 ? "(half the knee, for its stall)" : step.pass ? "pass" : tries === 1 ? "fail, trying again" : "FAIL"),
  );
  return step;
}

async function runSeries(server: ServerUnderTest, name: string, generator: Generator, fixture: Fixture, workload: Workload, payloadBytes: number): Promise<Series> {
  const entries = fixture.entries[workload];
  const steps: Step[] = [];
  for (const rate of name === "chat-cluster" ? CLUSTER_RATES : RATES) {
    let step = await measureStep(server, name, generator, workload, entries, rate, payloadBytes, 1);
    // Other people's tests share these 2 cores and now and then stall a process for 100 ms or more:
    // a step must fail twice in a row to end the series.
    if (!step.pass) step = await measureStep(server, name, generator, workload, entries, rate, payloadBytes, 2);
    steps.push(step);
    if (!step.pass) break;
  }
  const knee = [...steps].reverse().find((step) => step.pass)?.offered ?? 0;
  // The stall check reads half the knee, a rate the doubling series skips when its first step is the knee.
  const halfKnee = knee > 0 && !steps.some((step) => step.offered === knee / 2) ? await measureStep(server, name, generator, workload, entries, knee / 2, payloadBytes, 0) : undefined;
  return { server: name, workload, payloadBytes, fanout: fanoutOf(entries), steps, knee, ceiling: steps.every((step) => step.pass), halfKnee };
}

async function throughput(server: ServerUnderTest, name: string, fixture: Fixture, runs: [Workload, number][]): Promise<Series[]> {
  const generator = track(new Generator());
  const series: Series[] = [];
  let client: ClientKind | undefined;
  for (const [workload, payloadBytes] of runs) {
    // The gateway's GraphQL workload needs every device reconnected over graphql-ws.
    const wanted = clientFor(server.kind, workload)!;
    if (wanted !== client) {
      if (client) await generator.ask({ type: "close" });
      client = wanted;
      const connected = await generator.ask({ type: "connect", target: { kind: client, url: server.url }, devices: fixture.devices });
      log(`${name}: ${fixture.devices.length} devices connected over ${CLIENT_NAMES[client]} in ${(connected as { ms: number }).ms.toFixed(0)} ms`);
      // JIT, lazily loaded modules and first-use allocations would otherwise land in the first step.
      await generator.ask({ type: "step", stepId: ++stepCounter, rate: RATES[0]! / 2, seconds: 2, payloadBytes: 100, entries: fixture.entries[workload], drainMs: 3000 });
    }
    series.push(await runSeries(server, name, generator, fixture, workload, payloadBytes));
  }
  await generator.ask({ type: "close" });
  await stop(generator);
  return series;
}

/**
 * Memory per idle connection: a fresh server, then `count` connections that only open (past the
 * device stream's `ready`, the subscription's first event) and wait, spread
 * over ≤ 15,000 per server process and per generator process (the file limit is 20,000).
 */
async function idleMemory(client: ClientKind, name: string, count: number, start: () => Promise<ServerUnderTest>): Promise<IdleResult> {
  const processes = Math.ceil(count / PER_PROCESS_CONNECTIONS);
  log(`${name.padEnd(14)} idle: opening ${count} ${CLIENT_NAMES[client]} connections over ${processes} server process(es)`);
  const servers = await Promise.all(Array.from({ length: processes }, async () => track(await start())));
  const tokens = client.startsWith("chat") ? await Promise.all(servers.map(async (server) => (await signUpUsers(server.url, 20)).map((user) => user.session.accessToken))) : servers.map(() => [""]);
  await sleep(2000);
  const before = await Promise.all(servers.map(async (server) => ({ rss: rssBytes(server.pid), heap: await server.heapUsed() })));
  const generators = servers.map(() => track(new Generator()));
  const share = (index: number) => Math.floor(count / processes) + (index < count % processes ? 1 : 0);
  const opened = await Promise.all(
    servers.map((server, index) => generators[index]!.ask({ type: "idle", target: { kind: client, url: server.url }, count: share(index), tokens: tokens[index]! })),
  );
  const open = opened.reduce((sum, answer) => sum + (answer as { opened: number }).opened, 0);
  const openMs = Math.max(...opened.map((answer) => (answer as { ms: number }).ms));
  const failed = opened.reduce((sum, answer) => sum + (answer as { failed: number }).failed, 0);
  await sleep(3000);
  const after = await Promise.all(servers.map(async (server) => ({ rss: rssBytes(server.pid), heap: await server.heapUsed() })));
  const rssDelta = after.reduce((sum, value, index) => sum + value.rss - before[index]!.rss, 0);
  const heapDelta = after.reduce((sum, value, index) => sum + value.heap - before[index]!.heap, 0);
  const result: IdleResult = {
    server: name,
    client,
    connections: count,
    opened: open,
    failed,
    processes,
    rssPerConnection: rssDelta / open,
    heapPerConnection: heapDelta / open,
    rssTotal: after.reduce((sum, value) => sum + value.rss, 0),
  };
  log(
    `${name.padEnd(14)} idle ${open}/${count} ${CLIENT_NAMES[client]} open over ${processes} process(es) in ${(openMs / 1000).toFixed(1)} s: RSS ${(result.rssPerConnection / 1024).toFixed(1)} KB/conn, ` +
      `V8 heap ${(result.heapPerConnection / 1024).toFixed(1)} KB/conn${failed ? `, ${failed} failed` : ""}`,
  );
  await Promise.all(generators.map((generator) => stop(generator)));
  await Promise.all(servers.map((server) => stop(server)));
  return result;
}

async function main(): Promise<void> {
  log(`bench: modes ${modes.join(",")}, workloads ${workloads.join(",")}, payloads ${payloads.join(",")}, ${stepSeconds} s steps, idle ${idleCounts.join(",") || "none"}`);
  const results: BenchResults = {
    startedAt: new Date(started).toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", node: process.version, loadAverageAtStart: loadavg()[0]! },
    settings: { users, stepSeconds, p99LimitMs: P99_LIMIT_MS, deliveredMin: DELIVERED_MIN, stallLimitMs: STALL_LIMIT_MS, loopResolutionMs: LOOP_RESOLUTION_MS, rates: RATES, clusterRates: CLUSTER_RATES, command: ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" ") },
    series: [],
    idle: [],
    catchUp: [],
    leanClientCheck: "",
  };

  // `--workloads=` (none) measures only idle memory.
  for (const kind of serverKinds) {
    if (kind === "chat" || plan(kind, false).length === 0) continue;
    const relay = track(await startRelay(kind));
    results.series.push(...(await throughput(relay, kind, relayFixture(users), plan(kind, false))));
    await stop(relay);
  }

  let cluster: ClusterServices | undefined;
  let chatModes = modes;
  // Not every machine has a Cassandra: the default set then leaves cluster mode out and says so; an
  // explicit --mode cluster fails instead.
  if (args.mode === undefined && workloads.length && serverKinds.includes("chat") && !(await listening(args.cassandra))) {
    results.settings.clusterSkipped = `cluster mode left out: no Cassandra answered at ${args.cassandra}`;
    log(String(results.settings.clusterSkipped));
    chatModes = modes.filter((mode) => mode !== "cluster");
  }
  if (workloads.length && serverKinds.includes("chat")) {
    for (const mode of chatModes) {
      if (mode === "cluster") {
        cluster = track(await startClusterServices(args.cassandra));
      }
      const name = `chat-${mode}`;
      const gateway = track(await startGateway(mode, cluster?.env, args.profile ? PROFILES : undefined));
      const setupStart = Date.now();
      // Signing up and connecting is slow against Cassandra; the short cluster run needs only 1:1 pairs.
      const count = mode === "cluster" && !args["cluster-full"] ? Math.min(users, 100) : users;
      const { fixture, clients } = await chatFixture(gateway.url, count);
      log(`${name}: ${count} users, ${count / 2} 1:1 conversations, ${count / 10} groups of 10 and one of ${count} set up in ${Date.now() - setupStart} ms`);
      if (mode === chatModes[0]) {
        results.leanClientCheck = await checkLeanAgainstStock(gateway.url, clients[0]!, clients[1]!, fixture.devices[0]!.conversations[0]!);
        log(`lean client check: ${results.leanClientCheck}`);
      }
      results.series.push(...(await throughput(gateway, name, fixture, plan("chat", mode === "cluster" && !args["cluster-full"]))));
      // Writing 10,000 messages into Cassandra takes minutes here: only with --cluster-full.
      if (mode === "embedded" || args["cluster-full"]) {
        const catchUp = await measureCatchUp(gateway.url, clients[2]!, clients[3]!, fixture.devices[2]!.conversations[0]!, 10_000);
        results.catchUp.push({ server: name, ...catchUp });
        log(`${name}: catch-up of ${catchUp.messages} missed messages in ${catchUp.ms.toFixed(0)} ms (writing them took ${catchUp.fillMs.toFixed(0)} ms)`);
      }
      await stop(gateway);
      if (cluster) {
        await stop(cluster);
        cluster = undefined;
      }
    }
  }

  for (const count of idleCounts) {
    for (const kind of serverKinds) {
      if (kind !== "chat") results.idle.push(await idleMemory(kind, kind, count, () => startRelay(kind)));
      else for (const client of ["chat", "chat-graphql"] as const) results.idle.push(await idleMemory(client, "chat-embedded", count, () => startGateway("embedded")));
    }
  }

  results.finishedAt = new Date().toISOString();
  const written = await writeReport(results);
  log(`wrote ${written.join(", ")}`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    // Leftover sockets of the SDK clients would keep the process alive.
    process.exit();
  });
