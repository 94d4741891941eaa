/**
 * What abuse of the public surface costs everybody else, as numbers (no pass/fail: speed is reported
 * here, never asserted in tests). Starts the gateway as `npm start` runs it (default password cost,
 * client addresses from X-Forwarded-For so every flood attempt is hashed rather than throttled) and
 * measures:
 *
 * 1. Another user's send-to-ack (unary SendMessage, acked after the durable write), idle and during
 *    40-way wrong-password login floods: p50/p99 and their ratio.
 * 2. `/healthz` idle, and while a client keeps sending the largest GraphQL document the limits allow
 *    (one full introspection plus 30 aliases, under 5,000 tokens; `--heavy` clients at once):
 *    p50/p99/max and the p99 ratio.
 *
 *   npx tsx bench/abuse.ts [--sends 200] [--floods 5] [--heavy 1]
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { ChatClient } from "../clients/sdk/index.js";
import { removeDir, startServer } from "../test/support/server-process.js";
import { newUser, uniqueName } from "../test/support/users.js";

const { values: args } = parseArgs({ options: { sends: { type: "string", default: "200" }, floods: { type: "string", default: "5" }, heavy: { type: "string", default: "1" } } });
const HEAVY = Number(args.heavy);
const SENDS = Number(args.sends);
const FLOODS = Number(args.floods);

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const summary = (samples: readonly number[]) => ({
  n: samples.length,
  p50: +percentile(samples, 50).toFixed(1),
  p99: +percentile(samples, 99).toFixed(1),
  max: +Math.max(...samples).toFixed(1),
});

const TYPE_REF = "name kind ofType { name kind ofType { name kind ofType { name kind ofType { name kind } } } }";
const INTROSPECTION = `__schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { kind name description
    fields(includeDeprecated: true) { name description args { name description defaultValue type { ${TYPE_REF} } } type { ${TYPE_REF} } isDeprecated deprecationReason }
    inputFields { name description defaultValue type { ${TYPE_REF} } }
    interfaces { ${TYPE_REF} } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ${TYPE_REF} } }
  directives { name description locations args { name description defaultValue type { ${TYPE_REF} } } }
}`;
const LARGEST_DOCUMENT = `query Largest { ${INTROSPECTION} ${Array.from({ length: 30 }, (_, i) => `a${i}: __typename`).join(" ")} }`;

async function main(): Promise<void> {
  const server = await startServer({ env: { CHAT_PASSWORD_COST: "15", CHAT_TRUST_FORWARDED_FOR: "on" } });
  try {
    const sender = await newUser(server.url, "sender");
    const receiver = await newUser(server.url, "receiver");
    const conversationId = (await sender.send({ recipientUserId: receiver.userId }, "hello")).message!.conversationId;
    const timedSend = async () => {
      const started = performance.now();
      await sender.send({ conversationId }, "ping", randomUUID());
      return performance.now() - started;
    };

    const idle: number[] = [];
    for (let i = 0; i < SENDS; i++) idle.push(await timedSend());

    const flooded: number[] = [];
    const floodMs: number[] = [];
    for (let round = 0; round < FLOODS; round++) {
      const started = performance.now();
      let running = true;
      const flood = Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          new ChatClient({ baseUrl: server.url }).accounts
            .logIn({ username: uniqueName("ghost"), password: "wrong password", deviceName: "x" }, { headers: { "x-forwarded-for": `10.${round}.0.${i + 1}` } })
            .catch(() => undefined),
        ),
      ).then(() => {
        running = false;
        floodMs.push(performance.now() - started);
      });
      while (running) flooded.push(await timedSend());
      await flood;
    }

    const response = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: LARGEST_DOCUMENT }) });
    const answer = await response.text();
    if (!response.ok || answer.includes('"errors"')) throw new Error(`the largest allowed document was refused: ${answer.slice(0, 300)}`);
    const probeHealth = async (samples: number[], ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        const started = performance.now();
        await (await fetch(`${server.url}/healthz`)).text();
        samples.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const idleHealth: number[] = [];
    await probeHealth(idleHealth, 5_000);
    const health: number[] = [];
    let documents = 0;
    let stop = false;
    const heavy = Array.from({ length: HEAVY }, async () => {
      while (!stop) {
        const result = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: LARGEST_DOCUMENT }) });
        await result.arrayBuffer();
        documents++;
      }
    });
    await probeHealth(health, 5_000);
    stop = true;
    await Promise.all(heavy);

    const idleSummary = summary(idle);
    const floodSummary = summary(flooded);
    const report = {
      date: new Date().toISOString(),
      command: `npx tsx bench/abuse.ts --sends ${SENDS} --floods ${FLOODS} --heavy ${HEAVY}`,
      sendAckIdleMs: idleSummary,
      sendAckDuringLoginFloodMs: floodSummary,
      p99Ratio: +(floodSummary.p99 / idleSummary.p99).toFixed(2),
      loginFloodMs: summary(floodMs),
      largestDocument: { characters: LARGEST_DOCUMENT.length, responseBytes: answer.length, answeredDuringRun: documents },
      healthzIdleMs: summary(idleHealth),
      healthzDuringLargestDocumentsMs: summary(health),
      healthzP99Ratio: +(percentile(health, 99) / percentile(idleHealth, 99)).toFixed(2),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  }
}

await main();
