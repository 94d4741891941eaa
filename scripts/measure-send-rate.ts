/**
 * A rough figure for one process: 1:1 sends over the device stream, each acknowledged after the
 * durable SQLite write, counted again at the receivers. Closed loop (each sender keeps a window of
 * sends in flight), stock Connect client in this process. `npm run bench` is the open-loop benchmark
 * with baselines.
 *
 *   npx tsx scripts/measure-send-rate.ts [pairs=50] [window=20] [seconds=10]
 */
import { ChatClient, type DeviceStream } from "../clients/sdk/index.js";
import { removeDir, startServer } from "../test/support/server-process.js";
import { newUser } from "../test/support/users.js";

const [pairs = 50, window = 20, seconds = 10] = process.argv.slice(2).map(Number);
const server = await startServer({ nodeArgs: ["--max-semi-space-size=64"] });
const log = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fields)}\n`);

try {
  const senders: { stream: DeviceStream; to: string }[] = [];
  const receivers: DeviceStream[] = [];
  for (let i = 0; i < pairs; i++) {
    const [alice, bob]: ChatClient[] = await Promise.all([newUser(server.url, "rate"), newUser(server.url, "rate")]);
    const conversation = await alice.openDirect(bob.userId);
    const sending = alice.openStream();
    const receiving = bob.openStream();
    await Promise.all([sending.ready, receiving.ready]);
    senders.push({ stream: sending, to: conversation.conversationId });
    receivers.push(receiving);
  }
  log({ event: "ready", pairs, window, seconds });

  let delivered = 0;
  for (const receiver of receivers) {
    void (async () => {
      for await (const event of receiver) if (event.kind === "message") delivered++;
    })().catch(() => {
      // Closed at the end of the run.
    });
  }

  const latencies: number[] = [];
  let acked = 0;
  const text = "x".repeat(100);
  const deadline = performance.now() + seconds * 1000;
  const progress = setInterval(() => log({ event: "progress", acked, delivered }), 2000);
  const started = performance.now();
  await Promise.all(
    senders.flatMap(({ stream, to }) =>
      Array.from({ length: window }, async () => {
        while (performance.now() < deadline) {
          const sentAt = performance.now();
          await stream.send({ conversationId: to }, text);
          latencies.push(performance.now() - sentAt);
          acked++;
        }
      }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 500));
  clearInterval(progress);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.floor(q * (latencies.length - 1))]! * 10) / 10;
  log({
    event: "result",
    ackedPerSecond: Math.round(acked / elapsed),
    deliveredPerSecond: Math.round(delivered / elapsed),
    ackLatencyMs: { p50: at(0.5), p99: at(0.99) },
    acked,
    delivered,
  });
  for (const { stream } of senders) stream.close();
  for (const receiver of receivers) receiver.close();
} finally {
  await server.kill("SIGTERM");
  removeDir(server.dataDir);
}
