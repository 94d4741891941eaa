/**
 * What one 1:1 send costs, side by side in one run: one embedded gateway, then three cluster gateways
 * with the Paxos sequencer, then three with the JetStream log sequencer. Each pair's sender and
 * receiver sit on different gateways. Closed loop: every sender keeps `window` sends in flight on its
 * device stream. Counted from the gateways' /metrics and /proc: acked/s, ack latency, Cassandra
 * requests and Paxos rounds per send, gateway CPU per send.
 *
 *   CHAT_TEST_CASSANDRA=127.0.0.1:19042 npx tsx scripts/measure-cluster-send.ts [pairs=30] [window=8] [seconds=10]
 *
 * Needs nats-server and redis-server on the PATH and a Cassandra node (CHAT_TEST_CASSANDRA, or one
 * started under .tmp/cassandra-test).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatClient, type DeviceStream } from "../clients/sdk/index.js";
import { sharedCassandra } from "../test/support/cassandra.js";
import { removeDir, startServer, type ServerProcess } from "../test/support/server-process.js";
import { startNats, startRedis } from "../test/support/services.js";
import { newUser } from "../test/support/users.js";

const [pairs = 30, window = 8, seconds = 10] = process.argv.slice(2).map(Number);
const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fields)}\n`);
const TICKS_PER_SECOND = 100;

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

async function counters(gateway: ServerProcess): Promise<{ requests: number; paxos: number; accepted: number }> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const sum = (name: string) =>
    text
      .split("\n")
      .filter((line) => line.startsWith(name))
      .reduce((total, line) => total + Number(line.split(" ").pop()), 0);
  return { requests: sum("chat_store_requests_total"), paxos: sum("chat_store_paxos_rounds_total"), accepted: sum("chat_messages_accepted_total") };
}

async function run(name: string, gateways: ServerProcess[]): Promise<void> {
  const senders: { stream: DeviceStream; to: string }[] = [];
  const receivers: DeviceStream[] = [];
  for (let i = 0; i < pairs; i++) {
    const alice: ChatClient = await newUser(gateways[i % gateways.length]!.url, "cost");
    const bob: ChatClient = await newUser(gateways[(i + 1) % gateways.length]!.url, "cost");
    const conversation = await alice.openDirect(bob.userId);
    const sending = alice.openStream();
    const receiving = bob.openStream();
    await Promise.all([sending.ready, receiving.ready]);
    senders.push({ stream: sending, to: conversation.conversationId });
    receivers.push(receiving);
  }
  let delivered = 0;
  for (const receiver of receivers) {
    void (async () => {
      for await (const event of receiver) if (event.kind === "message") delivered++;
    })().catch(() => undefined);
  }
  const before = await Promise.all(gateways.map(counters));
  const cpuBefore = gateways.map((g) => cpuMs(g.child.pid!));
  const latencies: number[] = [];
  const text = "x".repeat(100);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    senders.flatMap(({ stream, to }) =>
      Array.from({ length: window }, async () => {
        while (performance.now() < deadline) {
          const sentAt = performance.now();
          await stream.send({ conversationId: to }, text);
          latencies.push(performance.now() - sentAt);
        }
      }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = gateways.reduce((total, g, i) => total + cpuMs(g.child.pid!) - cpuBefore[i]!, 0);
  const after = await Promise.all(gateways.map(counters));
  const delta = (key: "requests" | "paxos" | "accepted") => after.reduce((t, a, i) => t + a[key] - before[i]![key], 0);
  const accepted = delta("accepted");
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.floor(q * (latencies.length - 1))]! * 10) / 10;
  log({
    run: name,
    gateways: gateways.length,
    ackedPerSecond: Math.round(latencies.length / elapsed),
    ackMs: { p50: at(0.5), p99: at(0.99) },
    cassandraRequestsPerSend: accepted ? Math.round((delta("requests") / accepted) * 100) / 100 : 0,
    paxosRoundsPerSend: accepted ? Math.round((delta("paxos") / accepted) * 1000) / 1000 : 0,
    gatewayCpuMsPerSend: accepted ? Math.round((cpu / accepted) * 100) / 100 : 0,
    accepted,
    delivered,
  });
  for (const { stream } of senders) stream.close();
  for (const receiver of receivers) receiver.close();
}

const cassandra = await sharedCassandra();
const [nats, redis] = await Promise.all([startNats(), startRedis()]);
const dataDir = mkdtempSync(join(tmpdir(), "chat-cost-"));
const running: ServerProcess[] = [];
try {
  const embedded = await startServer({ dataDir: join(dataDir, "embedded") });
  running.push(embedded);
  await run("embedded", [embedded]);
  await embedded.kill("SIGTERM");

  for (const sequencer of ["paxos", "log"]) {
    const keyspace = `chat_cost_${randomBytes(4).toString("hex")}`;
    const secret = randomBytes(32).toString("hex");
    const gateways: ServerProcess[] = [];
    for (let i = 1; i <= 3; i++) {
      const gateway = await startServer({
        dataDir: join(dataDir, `${sequencer}-gw${i}`),
        env: {
          CHAT_STORE: `cassandra://${cassandra.contactPoint}/${keyspace}?sequencer=${sequencer}`,
          CHAT_BUS: nats.url,
          CHAT_PRESENCE: redis.url,
          CHAT_GATEWAY_ID: `${sequencer}${i}`,
          CHAT_TOKEN_SECRET: secret,
        },
      });
      gateways.push(gateway);
      running.push(gateway);
    }
    await run(`cluster-${sequencer}`, gateways);
    await Promise.all(gateways.map((gateway) => gateway.kill("SIGTERM")));
  }
} finally {
  await Promise.all(running.map((gateway) => gateway.kill("SIGKILL").catch(() => undefined)));
  await Promise.all([nats.dispose(), redis.dispose()]);
  removeDir(dataDir);
}
