import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredMessage } from "../../services/ports/index.js";
import { describeStoreContract } from "../../test/contracts/store-contract.js";
import { sharedCassandra } from "../../test/support/cassandra.js";
import { startNats } from "../../test/support/services.js";
import { createJetStreamLog } from "../log-jetstream/index.js";
import { createCassandraStore, type CassandraStore, type FencedLog } from "./index.js";
import { ascending, dropKeyspace, messageFixtures, range } from "../../test/support/store-fixtures.js";

// The log sequencer against the real engines: the run's Cassandra node and a nats-server of its own.
const keyspace = `chat_log_${randomBytes(5).toString("hex")}`;
let contactPoint: string;
let nats: Awaited<ReturnType<typeof startNats>>;
const opened: CassandraStore[] = [];
const requests: Array<{ operation: string; paxos: boolean }> = [];

beforeAll(async () => {
  [{ contactPoint }, nats] = await Promise.all([sharedCassandra(), startNats()]);
}, 180_000);

afterAll(async () => {
  for (const store of opened) await store.close().catch(() => undefined);
  await nats?.dispose();
  await dropKeyspace(contactPoint, keyspace);
}, 60_000);

/** A store as one gateway runs it; `wrap` lets a test stand between the sequencer and the log. */
async function open(wrap: (log: FencedLog) => FencedLog = (log) => log): Promise<CassandraStore> {
  const log = await createJetStreamLog({ natsUrl: nats.url });
  const store = await createCassandraStore({
    contactPoints: [contactPoint],
    keyspace,
    log: wrap(log),
    countRequest: (operation, paxos) => requests.push({ operation, paxos }),
  });
  opened.push(store);
  return store;
}

describeStoreContract("cassandra with the JetStream log sequencer", () => open(), undefined, { reopen: () => open() });

const { id, message, T0 } = messageFixtures();

async function direct(store: CassandraStore) {
  const conversationId = id("d");
  const [alice, bob] = [id("u"), id("u")];
  await store.conversations.ensureDirectConversation(conversationId, [alice, bob], new Date(T0));
  return { conversationId, alice, bob };
}

/** Every stored message of the conversation, checked gapless from 1 and one per client key. */
async function audit(store: CassandraStore, conversationId: string): Promise<StoredMessage[]> {
  const stored = await store.messages.readRange(conversationId, { limit: 10_000 });
  expect(stored.map((m) => m.seq)).toEqual(range(1, stored.length));
  expect(new Set(stored.map((m) => `${m.senderUserId}/${m.clientMsgId}`)).size).toBe(stored.length);
  return stored;
}

/** A log whose next append waits until released: the gateway is paused between numbering and appending. */
function pausingLog(log: FencedLog) {
  let pause: { reached: () => void; release: Promise<void> } | undefined;
  const wrapped: FencedLog = {
    last: (conversationId) => log.last(conversationId),
    async append(conversationId, expected, data) {
      const paused = pause;
      pause = undefined;
      if (paused) {
        paused.reached();
        await paused.release;
      }
      return log.append(conversationId, expected, data);
    },
    close: () => log.close(),
  };
  return {
    wrapped,
    /** Holds the next append; resolves `reached` once it is held. */
    pauseNext() {
      let release!: () => void;
      let reached!: () => void;
      const held = new Promise<void>((resolve) => (reached = resolve));
      pause = { reached, release: new Promise<void>((resolve) => (release = resolve)) };
      return { held, release };
    },
  };
}

describe("log sequencer", () => {
  it("keeps seqs gapless and unique with three gateways appending to one conversation at once, with no Paxos round", async () => {
    const gateways = await Promise.all([open(), open(), open()]);
    const { conversationId, alice, bob } = await direct(gateways[0]);
    requests.length = 0;
    const inputs = gateways.map((_, g) => Array.from({ length: 100 }, (_, i) => message(conversationId, i % 2 ? alice : bob, { senderDeviceId: `gw${g}` })));
    const results = await Promise.all(gateways.map((gateway, g) => Promise.all(inputs[g].map((input) => gateway.messages.append(input)))));
    expect(results.flat().every((r) => !r.duplicate)).toBe(true);
    expect(ascending(results.flat().map((r) => r.message.seq))).toEqual(range(1, 300));
    expect(requests.filter((r) => r.paxos)).toEqual([]);
    await audit(gateways[1], conversationId);

    // Resent through another gateway: the originals, not new messages.
    const again = await Promise.all(inputs[0].slice(0, 10).map((input) => gateways[2].messages.append({ ...input, messageId: id("m") })));
    expect(again.every((r) => r.duplicate)).toBe(true);
    expect(again.map((r) => r.message.messageId)).toEqual(results[0].slice(0, 10).map((r) => r.message.messageId));
  });

  it("a gateway paused before its append wakes to a refusal: the seqs another gateway acked meanwhile stay as acked", async () => {
    const control = pausingLog(await createJetStreamLog({ natsUrl: nats.url }));
    const sleeper = await open(() => control.wrapped);
    const other = await open();
    const { conversationId, alice, bob } = await direct(other);
    await other.messages.append(message(conversationId, alice));

    const { held, release } = control.pauseNext();
    const late = sleeper.messages.append(message(conversationId, bob, { text: "numbered while paused" }));
    await held;
    // While it is paused with seq 2 numbered in memory, the other gateway acks seqs 2..11.
    const acked = [];
    for (let i = 0; i < 10; i++) acked.push((await other.messages.append(message(conversationId, alice))).message);
    expect(acked.map((m) => m.seq)).toEqual(range(2, 11));
    release();
    const woken = await late;

    expect(woken.duplicate).toBe(false);
    expect(woken.message.seq).toBe(12n);
    const stored = await audit(other, conversationId);
    expect(stored.slice(1, 11)).toEqual(acked);
    expect(stored[11]!.text).toBe("numbered while paused");
  });

  it("an entry in the log that its gateway died before writing is written by the next appender, and its retry resolves to it", async () => {
    let dieAfterAppend = false;
    let appendedInLog!: () => void;
    const appended = new Promise<void>((resolve) => (appendedInLog = resolve));
    let wake!: () => void;
    const dying = await open((log) => ({
      ...log,
      async append(conversationId, expected, data) {
        const position = await log.append(conversationId, expected, data);
        if (!dieAfterAppend) return position;
        // The process stops here: appended in the log, nothing written to Cassandra, no ack.
        appendedInLog();
        await new Promise<void>((resolve) => (wake = resolve));
        throw new Error("the append's answer was lost");
      },
    }));
    const survivor = await open();
    const { conversationId, alice, bob } = await direct(survivor);
    await dying.messages.append(message(conversationId, alice));
    dieAfterAppend = true;
    const lost = message(conversationId, bob, { text: "appended, never acked" });
    const lostAck = dying.messages.append(lost);
    await appended;
    expect((await survivor.messages.readRange(conversationId, { limit: 100 })).map((m) => m.seq)).toEqual([1n]);

    const next = await survivor.messages.append(message(conversationId, alice, { text: "after the crash" }));
    expect(next.message.seq).toBe(3n);
    const retried = await survivor.messages.append({ ...lost, messageId: id("m") });
    expect(retried).toMatchObject({ duplicate: true, message: { seq: 2n, text: "appended, never acked" } });
    const stored = await audit(survivor, conversationId);
    expect(stored.map((m) => m.seq)).toEqual([1n, 2n, 3n]);

    // Had it only lost the answer (a timeout), it finds its own entry: acked once, as seq 2.
    wake();
    expect(await lostAck).toMatchObject({ duplicate: false, message: { seq: 2n, messageId: lost.messageId } });
  });

  it("refuses to run the Paxos sequencer on a keyspace the log sequencer numbers", async () => {
    await open();
    await expect(createCassandraStore({ contactPoints: [contactPoint], keyspace })).rejects.toThrow(/numbered by the log sequencer/);
  });
});
