import { randomBytes } from "node:crypto";
import { Client } from "cassandra-driver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupFullError, type StoredMessage } from "../../services/ports/index.js";
import { describeStoreContract } from "../../test/contracts/store-contract.js";
import { sharedCassandra } from "../../test/support/cassandra.js";
import { createReadMarks } from "./read-marks.js";
import { createSequencer } from "./sequencer.js";
import { createCqlSession, type CqlSession } from "./session.js";
import { createCassandraStore, MIGRATIONS, type CassandraStore } from "./index.js";
import { createUserIndex } from "./user-index.js";
import { ascending, dropKeyspace, messageFixtures, range, seqsOf } from "../../test/support/store-fixtures.js";

// One keyspace per run of this file: the contract suite tags every id with a per-run tag, so tests
// share it without a reset in between (TRUNCATE of every table would cost ~0.3 s per test).
const keyspace = `chat_test_${randomBytes(5).toString("hex")}`;
let contactPoint: string;
const opened: CassandraStore[] = [];

beforeAll(async () => {
  ({ contactPoint } = await sharedCassandra());
}, 180_000);

afterAll(async () => {
  for (const store of opened) await store.close().catch(() => undefined);
  await dropKeyspace(contactPoint, keyspace);
}, 60_000);

async function open(point = contactPoint, space = keyspace): Promise<CassandraStore> {
  const store = await createCassandraStore({ contactPoints: [point], keyspace: space });
  opened.push(store);
  return store;
}

describeStoreContract("cassandra", () => open(), undefined, { reopen: () => open() });

const { id, message, T0 } = messageFixtures();

describe("Cassandra engine", () => {
  it("keeps seqs gapless and unique with three gateways appending to one conversation at once", async () => {
    // Three stores = three Clients = three gateways, racing for the same partition's last_seq.
    const gateways = await Promise.all([open(), open(), open()]);
    const conversationId = id("d");
    const [alice, bob] = [id("u"), id("u")];
    await gateways[0].conversations.ensureDirectConversation(conversationId, [alice, bob], new Date(T0));

    const inputs = gateways.map((_, g) => Array.from({ length: 100 }, (_, i) => message(conversationId, i % 2 ? alice : bob, { senderDeviceId: `gw${g}` })));
    const results = await Promise.all(gateways.map((gateway, g) => Promise.all(inputs[g].map((input) => gateway.messages.append(input)))));
    const flat = results.flat();
    expect(flat.every((r) => !r.duplicate)).toBe(true);
    expect(ascending(seqsOf(flat.map((r) => r.message)))).toEqual(range(1, 300));

    const stored = await gateways[1].messages.readRange(conversationId, { limit: 1_000 });
    expect(seqsOf(stored)).toEqual(range(1, 300));
    const bySeq = new Map(flat.map((r) => [r.message.seq, r.message]));
    for (const m of stored) expect(m).toEqual(bySeq.get(m.seq));
    expect((await gateways[2].conversations.getConversation(conversationId))?.lastSeq).toBe(300n);
    // Every gateway goes on from where the others left off.
    expect((await gateways[2].messages.append(message(conversationId, alice))).message.seq).toBe(301n);
    expect((await gateways[0].messages.append(message(conversationId, bob))).message.seq).toBe(302n);
  });

  it("stores a key sent through several gateways at once exactly once", async () => {
    const gateways = await Promise.all([open(), open(), open()]);
    const conversationId = id("d");
    const [alice, bob] = [id("u"), id("u")];
    await gateways[0].conversations.ensureDirectConversation(conversationId, [alice, bob], new Date(T0));
    const keys = Array.from({ length: 20 }, () => id("retry"));
    // Each key is sent through every gateway (a client retrying on another connection), among fresh sends.
    const calls = gateways.flatMap((gateway) => [
      ...keys.map((clientMsgId) => gateway.messages.append(message(conversationId, alice, { clientMsgId }))),
      ...Array.from({ length: 10 }, () => gateway.messages.append(message(conversationId, bob))),
    ]);
    const results = await Promise.all(calls);
    const stored = await gateways[0].messages.readRange(conversationId, { limit: 1_000 });
    expect(seqsOf(stored)).toEqual(range(1, 50));
    for (const clientMsgId of keys) {
      const copies = results.filter((r) => r.message.clientMsgId === clientMsgId);
      expect(copies).toHaveLength(3);
      expect(copies.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(copies.map((r) => r.message.seq)).size).toBe(1);
      expect(stored.filter((m) => m.clientMsgId === clientMsgId)).toHaveLength(1);
    }
  });

  it("holds maxMembers when gateways add members to one group concurrently", async () => {
    const gateways = await Promise.all([open(), open(), open()]);
    const owner = id("u");
    const conversationId = id("g");
    await gateways[0].conversations.createGroup(
      { conversationId, title: "Capped", createdAt: new Date(T0), members: [owner, id("u"), id("u")].map((userId, i) => ({ userId, role: i ? "member" : "owner" })) },
      message(conversationId, owner, { kind: "system", text: "", systemJson: "{}" }),
    );
    const joiners = Array.from({ length: 15 }, () => id("u"));
    const settled = await Promise.allSettled(
      joiners.map((userId, i) =>
        gateways[i % 3].conversations.changeMembership(
          conversationId,
          { add: [{ userId, role: "member" }], maxMembers: 8 },
          message(conversationId, owner, { kind: "system", text: "", systemJson: "{}" }),
        ),
      ),
    );
    const added = settled.filter((s): s is PromiseFulfilledResult<StoredMessage> => s.status === "fulfilled");
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(added).toHaveLength(5);
    for (const r of refused) expect(r.reason).toBeInstanceOf(GroupFullError);
    expect(ascending(added.map((a) => a.value.seq))).toEqual(range(2, 6));
    expect(await gateways[1].conversations.listMembers(conversationId)).toHaveLength(8);
    expect((await gateways[2].conversations.getConversation(conversationId))?.lastSeq).toBe(6n);
  });

  describe("a process that dies between the conditional batch and the writes after it", () => {
    // A gateway whose writes to one table fail: what a crash right after the batch leaves behind.
    async function crashingGateway(failOn: string): Promise<{ sequencer: ReturnType<typeof createSequencer>; client: Client }> {
      const client = new Client({
        contactPoints: [contactPoint],
        localDataCenter: "datacenter1",
        protocolOptions: { port: Number(contactPoint.split(":")[1]) },
        encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
      });
      await client.connect();
      const real = createCqlSession(client);
      const failing = (statements: readonly { query: string }[]) => statements.some((s) => s.query.includes(failOn));
      const session: CqlSession = {
        ...real,
        write: (query, params) => (query.includes(failOn) ? Promise.reject(new Error("crashed")) : real.write(query, params)),
        writePartition: (statements) => (failing(statements) ? Promise.reject(new Error("crashed")) : real.writePartition(statements)),
      };
      const tables = {
        log: `${keyspace}.conversation_log`,
        memberships: `${keyspace}.memberships_by_user`,
        watermarks: `${keyspace}.read_watermarks`,
        moves: `${keyspace}.read_moves`,
      };
      const readMarks = createReadMarks(session, tables);
      return { sequencer: createSequencer(session, tables, readMarks, createUserIndex(session, tables, readMarks)), client };
    }

    it("heals the sender's watermark when the client retries the send", async () => {
      const store = await open();
      const conversationId = id("d");
      const [alice, bob] = [id("u"), id("u")];
      await store.conversations.ensureDirectConversation(conversationId, [alice, bob], new Date(T0));
      const crashing = await crashingGateway("read_moves");
      const input = message(conversationId, alice);
      await expect(crashing.sequencer.append(input)).rejects.toThrow("crashed");
      await crashing.client.shutdown();
      expect(await store.receipts.readSeq(conversationId, alice)).toBe(0n);

      const retried = await store.messages.append({ ...input, messageId: id("m") });
      expect(retried).toEqual({ message: { ...input, seq: 1n }, duplicate: true });
      expect(await store.receipts.readSeq(conversationId, alice)).toBe(1n);
    });

    it("heals the user index on the client's retry, or on the group's next change", async () => {
      const store = await open();
      const [owner, carol, dave] = [id("u"), id("u"), id("u")];
      const conversationId = id("g");
      const event = () => message(conversationId, owner, { kind: "system", text: "", systemJson: "{}" });
      await store.conversations.createGroup({ conversationId, title: "Heal", createdAt: new Date(T0), members: [{ userId: owner, role: "owner" }] }, event());
      const crashing = await crashingGateway("memberships_by_user");

      // Retry heals: the change is applied in the conversation but missing from carol's index.
      const addCarol = event();
      await expect(crashing.sequencer.changeMembership(conversationId, { add: [{ userId: carol, role: "member" }] }, addCarol)).rejects.toThrow("crashed");
      expect(await store.conversations.isMember(conversationId, carol)).toBe(true);
      expect(await store.conversations.listGroups(carol)).toEqual([]);
      expect((await store.conversations.changeMembership(conversationId, { add: [{ userId: carol, role: "member" }] }, addCarol)).seq).toBe(2n);
      expect((await store.conversations.listGroups(carol)).map((g) => g.conversationId)).toEqual([conversationId]);
      expect(await store.receipts.readSeq(conversationId, carol)).toBe(2n);

      // No retry: the next change of the group, by anyone, repairs it.
      await expect(crashing.sequencer.changeMembership(conversationId, { add: [{ userId: dave, role: "member" }] }, event())).rejects.toThrow("crashed");
      await crashing.client.shutdown();
      expect(await store.conversations.listHeads(dave)).toEqual([]);
      await store.conversations.changeMembership(conversationId, { title: "Healed" }, event());
      expect(await store.conversations.listHeads(dave)).toEqual([{ conversationId, lastSeq: 4n }]);
      expect(await store.receipts.readSeq(conversationId, dave)).toBe(3n);
    });
  });

  it("records its migrations and opens an existing keyspace without re-applying them", async () => {
    const store = await open();
    const rows = await store.client.execute(`SELECT version, state FROM ${keyspace}.schema_migrations`);
    expect(rows.rows.map((r) => [r.version, r.state])).toEqual(MIGRATIONS.map((m) => [m.version, "applied"]));
    // Several processes starting on a fresh keyspace at once agree on one schema.
    const fresh = `chat_test_${randomBytes(5).toString("hex")}`;
    const stores = await Promise.all([open(contactPoint, fresh), open(contactPoint, fresh), open(contactPoint, fresh)]);
    const [a, b] = [id("u"), id("u")];
    await stores[0].conversations.ensureDirectConversation("d_fresh", [a, b], new Date(T0));
    expect((await stores[2].messages.append(message("d_fresh", a))).message.seq).toBe(1n);
    for (const each of stores) await each.close();
    await store.client.execute(`DROP KEYSPACE ${fresh}`);
  });
});
