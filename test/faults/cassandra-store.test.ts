import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCassandraStore, type CassandraStore } from "../../backends/store-cassandra/index.js";
import type { ChatStore, StoredMessage } from "../../services/ports/index.js";
import { sharedCassandra, startCassandra, type CassandraNode } from "../support/cassandra.js";
import { dropKeyspace, messageFixtures, range, seqsOf } from "../support/store-fixtures.js";

/**
 * The Cassandra store under load and through a crash: append rates on the shared node, and a node of
 * this file's own killed with SIGKILL right after a thousand acknowledgements.
 */

const keyspace = `chat_test_${randomBytes(5).toString("hex")}`;
let contactPoint: string;
const opened: CassandraStore[] = [];

const { id, message, T0 } = messageFixtures();

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe("Cassandra store under load", () => {
  beforeAll(async () => {
    ({ contactPoint } = await sharedCassandra());
  }, 180_000);

  afterAll(async () => {
    for (const store of opened) await store.close().catch(() => undefined);
    await dropKeyspace(contactPoint, keyspace);
  }, 60_000);

  async function open(): Promise<CassandraStore> {
    const store = await createCassandraStore({ contactPoints: [contactPoint], keyspace });
    opened.push(store);
    return store;
  }

  it("reports append latency and throughput, and every append under the burst gets its own seq", async () => {
    const store = await open();
    const [alice, bob] = [id("u"), id("u")];
    const one = id("d");
    await store.conversations.ensureDirectConversation(one, [alice, bob], new Date(T0));
    for (let i = 0; i < 20; i++) await store.messages.append(message(one, alice)); // warm-up

    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await store.messages.append(message(one, alice));
      latencies.push(performance.now() - started);
    }
    latencies.sort((x, y) => x - y);

    const burst = 2_000;
    let started = performance.now();
    await Promise.all(Array.from({ length: burst }, (_, i) => store.messages.append(message(one, i % 2 ? alice : bob))));
    const oneConversationRate = burst / ((performance.now() - started) / 1000);

    const conversations = Array.from({ length: 50 }, () => id("d"));
    await Promise.all(conversations.map((c) => store.conversations.ensureDirectConversation(c, [alice, bob], new Date(T0))));
    started = performance.now();
    await Promise.all(Array.from({ length: burst }, (_, i) => store.messages.append(message(conversations[i % 50], alice))));
    const manyConversationsRate = burst / ((performance.now() - started) / 1000);

    // Three gateways on one conversation: the rounds they lose to each other are the price of CAS.
    const gateways = await Promise.all([open(), open(), open()]);
    const shared = id("d");
    await store.conversations.ensureDirectConversation(shared, [alice, bob], new Date(T0));
    started = performance.now();
    await Promise.all(gateways.flatMap((g) => Array.from({ length: burst / 3 }, () => g.messages.append(message(shared, alice)))));
    const threeGatewaysRate = (3 * Math.floor(burst / 3)) / ((performance.now() - started) / 1000);

    const report = {
      "sequential append p50 ms": +percentile(latencies, 50).toFixed(2),
      "sequential append p99 ms": +percentile(latencies, 99).toFixed(2),
      "one conversation, 2000 concurrent, msg/s": Math.round(oneConversationRate),
      "50 conversations, 2000 concurrent, msg/s": Math.round(manyConversationsRate),
      "one conversation, 3 gateways, msg/s": Math.round(threeGatewaysRate),
    };
    console.log("cassandra append rates", report);
    // Rates are reported, not asserted (bench/ compares them against a baseline); what must hold
    // under the load is that every append got its own seq.
    const stored = await store.messages.readRange(one, { limit: 5_000 });
    expect(seqsOf(stored)).toEqual(range(1, 20 + 200 + burst));
  });
});

describe("Cassandra durability", () => {
  let node: CassandraNode;
  beforeAll(async () => {
    node = await startCassandra();
  }, 180_000);
  afterAll(async () => {
    await node?.dispose();
  }, 60_000);

  it("loses no acknowledged append when the node is killed with SIGKILL right after the acks", async () => {
    const space = "durability";
    const store = await createCassandraStore({ contactPoints: [node.contactPoint], keyspace: space });
    const conversationId = "d_durable";
    const [alice, bob] = ["u_alice", "u_bob"];
    await store.conversations.ensureDirectConversation(conversationId, [alice, bob], new Date(T0));
    const inputs = Array.from({ length: 1_000 }, (_, i) => message(conversationId, i % 2 ? alice : bob));
    const acked: StoredMessage[] = [];
    const sends = inputs.map((input) => store.messages.append(input).then((r) => void acked.push(r.message)));
    // Kill as soon as the last one is acknowledged: nothing may be left to a later commit-log sync.
    await Promise.all(sends);
    await node.kill();
    await store.close().catch(() => undefined);
    expect(acked).toHaveLength(1_000);

    await node.restart();
    const reopened: ChatStore = await createCassandraStore({ contactPoints: [node.contactPoint], keyspace: space });
    try {
      const stored = await reopened.messages.readRange(conversationId, { limit: 5_000 });
      expect(seqsOf(stored)).toEqual(range(1, 1_000));
      const bySeq = new Map(acked.map((m) => [m.seq, m]));
      for (const m of stored) expect(m).toEqual(bySeq.get(m.seq));
      expect((await reopened.conversations.getConversation(conversationId))?.lastSeq).toBe(1_000n);
      expect(await reopened.receipts.readSeq(conversationId, alice)).toBe(1_000n);
      expect((await reopened.messages.append(message(conversationId, alice))).message.seq).toBe(1_001n);
      // The idempotency keys survived too.
      expect((await reopened.messages.append({ ...inputs[0], messageId: "m_again" })).duplicate).toBe(true);
    } finally {
      await reopened.close();
    }
  }, 180_000);
});
