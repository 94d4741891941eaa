import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ChatStore, ConversationHead, DeviceRecord, NewMessage, StoredMessage, UserRecord } from "../../services/ports/index.js";

/** Releases what one `createStore()` made (a file, a keyspace), after the suite has closed the store. */
export type StoreCleanup = (store: ChatStore) => Promise<void> | void;

export interface StoreContractOptions {
  /** Opens the data of `closed` (already closed) again: every engine persists. */
  readonly reopen: (closed: ChatStore) => Promise<ChatStore> | ChatStore;
}

/**
 * What every ChatStore engine must do, whatever it runs on. Each test gets a fresh, empty store from
 * `createStore` and closes it (and whatever it reopened) at the end.
 */
export function describeStoreContract(
  engineName: string,
  createStore: () => Promise<ChatStore> | ChatStore,
  cleanup: StoreCleanup | undefined,
  options: StoreContractOptions,
): void {
  describe(`ChatStore contract: ${engineName}`, () => {
    let store: ChatStore;
    let created: ChatStore[] = [];
    let opened: ChatStore[] = [];
    // The port does not promise that close() may be called twice, so the suite never does.
    const closed = new WeakSet<ChatStore>();
    async function close(target: ChatStore): Promise<void> {
      closed.add(target);
      await target.close();
    }

    beforeEach(async () => {
      store = await createStore();
      created = [store];
      opened = [store];
    });

    afterEach(async () => {
      for (const each of opened) if (!closed.has(each)) await close(each);
      for (const each of created) await cleanup?.(each);
    });

    async function reopen(): Promise<ChatStore> {
      await close(store);
      store = await options.reopen(store);
      opened.push(store);
      return store;
    }

    // A fixed base keeps the times whole milliseconds, which every engine stores exactly.
    const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const at = (offsetMs: number) => new Date(T0 + offsetMs);
    // Ids and usernames also carry a per-run tag, so the suite holds for an engine whose factory
    // hands out one shared keyspace rather than an empty store per test.
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const unique = (prefix: string) => `${prefix}_${run}${(++counter).toString().padStart(6, "0")}`;

    function user(name: string): UserRecord {
      return {
        userId: unique(`u_${name}`),
        username: `${name}${run}${counter}`,
        displayName: `${name[0].toUpperCase()}${name.slice(1)}`,
        passwordHash: `scrypt$15$8$1$salt${counter}$hash${counter}`,
        createdAt: at(counter),
      };
    }

    async function users(...names: string[]): Promise<UserRecord[]> {
      const records = names.map(user);
      for (const record of records) expect(await store.accounts.createUser(record)).toBe(true);
      return records;
    }

    async function direct(a: UserRecord, b: UserRecord): Promise<string> {
      const conversationId = unique("d");
      await store.conversations.ensureDirectConversation(conversationId, [a.userId, b.userId], at(0));
      return conversationId;
    }

    function device(owner: UserRecord, hash: string): DeviceRecord {
      return {
        deviceId: unique("dev"),
        userId: owner.userId,
        name: "phone",
        createdAt: at(50),
        refreshTokenHash: hash,
        refreshExpiresAt: at(3_600_000),
      };
    }

    function message(conversationId: string, sender: UserRecord | string, extra: Partial<NewMessage> = {}): NewMessage {
      const senderUserId = typeof sender === "string" ? sender : sender.userId;
      return {
        messageId: unique("m"),
        conversationId,
        senderUserId,
        senderDeviceId: `${senderUserId}_device`,
        clientMsgId: unique("c"),
        kind: "text",
        text: `text ${counter}`,
        sentAt: at(counter),
        ...extra,
      };
    }

    const seqs = (messages: readonly StoredMessage[]) => messages.map((m) => m.seq);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));
    const readAll = (conversationId: string) => store.messages.readRange(conversationId, { limit: 100_000 });

    describe("messages.append", () => {
      it("stores the message as given and assigns 1, 2, 3, ... independently per conversation", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const ab = await direct(alice, bob);
        const ac = await direct(alice, carol);
        const plan: Array<[string, UserRecord]> = [
          [ab, alice],
          [ac, carol],
          [ab, bob],
          [ab, alice],
          [ac, alice],
        ];
        const results = [];
        for (const [conversationId, sender] of plan) {
          const input = message(conversationId, sender);
          const result = await store.messages.append(input);
          expect(result).toEqual({ message: { ...input, seq: result.message.seq }, duplicate: false });
          results.push(result.message);
        }
        expect(seqs(results)).toEqual([1n, 1n, 2n, 3n, 2n]);
        expect(typeof results[0].seq).toBe("bigint");
        expect((await store.conversations.getConversation(ab))?.lastSeq).toBe(3n);
        expect((await store.conversations.getConversation(ac))?.lastSeq).toBe(2n);
        expect(await readAll(ab)).toEqual(results.filter((m) => m.conversationId === ab));
        expect(await readAll(ac)).toEqual(results.filter((m) => m.conversationId === ac));
      });

      it("round-trips system messages with their JSON", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const input = message(ab, alice, { kind: "system", text: "", systemJson: '{"memberAdded":{"userId":"x"}}' });
        const { message: stored } = await store.messages.append(input);
        expect(stored).toEqual({ ...input, seq: 1n });
        expect(await readAll(ab)).toEqual([stored]);
      });

      it("gives 500 concurrent appends from several senders exactly the seqs 1..500", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const devices = [`${alice.userId}_phone`, `${alice.userId}_laptop`, `${bob.userId}_phone`, `${bob.userId}_laptop`];
        const inputs = Array.from({ length: 500 }, (_, i) => {
          const sender = i % 4 < 2 ? alice : bob;
          return message(ab, sender, { senderDeviceId: devices[i % 4] });
        });
        const results = await Promise.all(inputs.map((input) => store.messages.append(input)));

        expect(results.every((r) => !r.duplicate)).toBe(true);
        const assigned = seqs(results.map((r) => r.message)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(assigned).toEqual(range(1, 500));
        results.forEach((r, i) => expect(r.message).toEqual({ ...inputs[i], seq: r.message.seq }));

        const stored = await readAll(ab);
        expect(seqs(stored)).toEqual(range(1, 500));
        const bySeq = new Map(results.map((r) => [r.message.seq, r.message]));
        for (const m of stored) expect(m).toEqual(bySeq.get(m.seq));
        expect((await store.conversations.getConversation(ab))?.lastSeq).toBe(500n);
      });

      it("returns the original for a repeated (sender, clientMsgId), storing nothing", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const first = await store.messages.append(message(ab, alice, { clientMsgId: "retry-0001" }));
        const retry = await store.messages.append(message(ab, alice, { clientMsgId: "retry-0001", text: "changed", senderDeviceId: "other" }));
        expect(first.duplicate).toBe(false);
        expect(retry).toEqual({ message: first.message, duplicate: true });
        const next = await store.messages.append(message(ab, bob));
        expect(next.message.seq).toBe(2n);
        expect(seqs(await readAll(ab))).toEqual([1n, 2n]);
        expect((await store.conversations.getConversation(ab))?.lastSeq).toBe(2n);
      });

      it("stores a repeat sent in the same tick once: both calls get the same message", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const copies = Array.from({ length: 5 }, () => message(ab, alice, { clientMsgId: "same-tick-01" }));
        const others = Array.from({ length: 5 }, () => message(ab, bob));
        const interleaved = copies.flatMap((copy, i) => [copy, others[i]]);
        const results = await Promise.all(interleaved.map((input) => store.messages.append(input)));

        const copyResults = results.filter((_, i) => i % 2 === 0);
        expect(copyResults.filter((r) => !r.duplicate)).toHaveLength(1);
        const original = copyResults.find((r) => !r.duplicate)!.message;
        for (const r of copyResults) expect(r.message).toEqual(original);
        expect(copies.map((c) => c.messageId)).toContain(original.messageId);

        const stored = await readAll(ab);
        expect(seqs(stored)).toEqual(range(1, 6));
        expect(stored.filter((m) => m.clientMsgId === "same-tick-01")).toEqual([original]);
      });

      it("keeps the same clientMsgId from two senders apart", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const [fromAlice, fromBob] = await Promise.all([
          store.messages.append(message(ab, alice, { clientMsgId: "shared-0001" })),
          store.messages.append(message(ab, bob, { clientMsgId: "shared-0001" })),
        ]);
        expect(fromAlice.duplicate).toBe(false);
        expect(fromBob.duplicate).toBe(false);
        expect(fromAlice.message.messageId).not.toBe(fromBob.message.messageId);
        expect(new Set([fromAlice.message.seq, fromBob.message.seq])).toEqual(new Set([1n, 2n]));
        expect(await readAll(ab)).toHaveLength(2);
        const again = await store.messages.append(message(ab, bob, { clientMsgId: "shared-0001" }));
        expect(again).toEqual({ message: fromBob.message, duplicate: true });
      });

      it("rejects an append to a conversation that does not exist, without disturbing the others", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const lost = message("d_nowhere", alice, { clientMsgId: "lost-000001" });
        const settled = await Promise.allSettled([
          store.messages.append(message(ab, alice)),
          store.messages.append(lost),
          store.messages.append(message(ab, bob)),
        ]);
        expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
        expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
        expect(seqs(await readAll(ab))).toEqual([1n, 2n]);
        expect(await store.conversations.getConversation("d_nowhere")).toBeUndefined();
        expect(await readAll("d_nowhere")).toEqual([]);
        // The failed append did not claim its idempotency key.
        const retried = await store.messages.append({ ...lost, conversationId: ab });
        expect(retried.duplicate).toBe(false);
        expect(retried.message.seq).toBe(3n);
      });
    });

    describe("messages.readRange", () => {
      let ab: string;
      let all: StoredMessage[];

      beforeEach(async () => {
        const [alice, bob] = await users("alice", "bob");
        ab = await direct(alice, bob);
        const ac = await direct(alice, (await users("carol"))[0]);
        all = [];
        for (let i = 0; i < 10; i++) {
          all.push((await store.messages.append(message(ab, i % 2 ? bob : alice))).message);
          await store.messages.append(message(ac, alice)); // interleaved, must never show up in ab
        }
      });

      const cases: Array<[string, { afterSeq?: bigint; beforeSeq?: bigint; limit: number; newest?: boolean }, number[]]> = [
        ["everything", { limit: 100 }, [1, 10]],
        ["the oldest page", { limit: 3 }, [1, 3]],
        ["the newest page", { limit: 3, newest: true }, [8, 10]],
        ["newest with a limit above the count", { limit: 100, newest: true }, [1, 10]],
        ["after a seq", { afterSeq: 4n, limit: 3 }, [5, 7]],
        ["after a seq, newest", { afterSeq: 4n, limit: 3, newest: true }, [8, 10]],
        ["after 0", { afterSeq: 0n, limit: 2 }, [1, 2]],
        ["before a seq", { beforeSeq: 5n, limit: 10 }, [1, 4]],
        ["before a seq, oldest", { beforeSeq: 5n, limit: 2 }, [1, 2]],
        ["before a seq, newest", { beforeSeq: 5n, limit: 2, newest: true }, [3, 4]],
        ["between two seqs", { afterSeq: 2n, beforeSeq: 6n, limit: 10 }, [3, 5]],
        ["between two seqs, oldest", { afterSeq: 2n, beforeSeq: 6n, limit: 2 }, [3, 4]],
        ["between two seqs, newest", { afterSeq: 2n, beforeSeq: 6n, limit: 2, newest: true }, [4, 5]],
        ["before a seq past the end", { beforeSeq: 1000n, limit: 3, newest: true }, [8, 10]],
      ];
      for (const [name, options, [from, to]] of cases) {
        it(`reads ${name}, ascending`, async () => {
          const page = await store.messages.readRange(ab, options);
          expect(seqs(page)).toEqual(range(from, to));
          expect(page).toEqual(all.slice(from - 1, to));
        });
      }

      const empty: Array<[string, { afterSeq?: bigint; beforeSeq?: bigint; limit: number; newest?: boolean }]> = [
        ["after the last seq", { afterSeq: 10n, limit: 5 }],
        ["after the last seq, newest", { afterSeq: 10n, limit: 5, newest: true }],
        ["before the first seq", { beforeSeq: 1n, limit: 5, newest: true }],
        ["between adjacent seqs", { afterSeq: 5n, beforeSeq: 6n, limit: 5 }],
        ["an inverted range", { afterSeq: 6n, beforeSeq: 5n, limit: 5 }],
      ];
      for (const [name, options] of empty) {
        it(`reads nothing ${name}`, async () => {
          expect(await store.messages.readRange(ab, options)).toEqual([]);
        });
      }

      it("reads nothing from an unknown or empty conversation", async () => {
        expect(await store.messages.readRange("d_unknown", { limit: 10 })).toEqual([]);
        const [dave, erin] = await users("dave", "erin");
        const empty = await direct(dave, erin);
        expect(await store.messages.readRange(empty, { limit: 10, newest: true })).toEqual([]);
      });
    });

    describe("conversations", () => {
      it("creates a direct conversation once, however often and concurrently it is ensured", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const id = unique("d");
        const created = await Promise.all(
          Array.from({ length: 5 }, () => store.conversations.ensureDirectConversation(id, [alice.userId, bob.userId], at(1000))),
        );
        const expected = { conversationId: id, kind: "direct", title: "", createdAt: at(1000), lastSeq: 0n };
        for (const record of created) expect(record).toEqual(expected);

        await store.messages.append(message(id, alice));
        const later = await store.conversations.ensureDirectConversation(id, [bob.userId, alice.userId], at(9000));
        expect(later).toEqual({ ...expected, lastSeq: 1n });
        expect(await store.conversations.getConversation(id)).toEqual({ ...expected, lastSeq: 1n });

        expect((await store.conversations.listMemberIds(id)).sort()).toEqual([alice.userId, bob.userId].sort());
        expect(await store.conversations.isMember(id, alice.userId)).toBe(true);
        expect(await store.conversations.isMember(id, bob.userId)).toBe(true);
        expect(await store.conversations.isMember(id, carol.userId)).toBe(false);
      });

      it("knows nothing of conversations that do not exist", async () => {
        const [alice] = await users("alice");
        expect(await store.conversations.getConversation("d_unknown")).toBeUndefined();
        expect(await store.conversations.isMember("d_unknown", alice.userId)).toBe(false);
        expect(await store.conversations.listMemberIds("d_unknown")).toEqual([]);
        expect(await store.conversations.listHeads(alice.userId)).toEqual([]);
      });

      it("lists the heads of the user's conversations with their last seq", async () => {
        const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
        const ab = await direct(alice, bob);
        const ac = await direct(alice, carol);
        const byId = (heads: ConversationHead[]) => [...heads].sort((x, y) => (x.conversationId < y.conversationId ? -1 : 1));

        expect(byId(await store.conversations.listHeads(alice.userId))).toEqual(
          byId([
            { conversationId: ab, lastSeq: 0n },
            { conversationId: ac, lastSeq: 0n },
          ]),
        );
        await Promise.all([message(ab, alice), message(ab, bob), message(ab, alice), message(ac, carol)].map((m) => store.messages.append(m)));

        expect(byId(await store.conversations.listHeads(alice.userId))).toEqual(
          byId([
            { conversationId: ab, lastSeq: 3n },
            { conversationId: ac, lastSeq: 1n },
          ]),
        );
        expect(await store.conversations.listHeads(bob.userId)).toEqual([{ conversationId: ab, lastSeq: 3n }]);
        expect(await store.conversations.listHeads(carol.userId)).toEqual([{ conversationId: ac, lastSeq: 1n }]);
        expect(await store.conversations.listHeads(dave.userId)).toEqual([]);
      });
    });

    describe("accounts", () => {
      it("creates users with unique usernames and finds them", async () => {
        const alice = user("alice");
        const bob = user("bob");
        expect(await store.accounts.createUser(alice)).toBe(true);
        expect(await store.accounts.createUser(bob)).toBe(true);

        const impostor = { ...user("impostor"), username: alice.username };
        expect(await store.accounts.createUser(impostor)).toBe(false);
        expect(await store.accounts.findUsersByIds([impostor.userId])).toEqual([]);
        expect(await store.accounts.findUserByUsername(alice.username)).toEqual(alice);

        expect(await store.accounts.findUserByUsername(bob.username)).toEqual(bob);
        expect(await store.accounts.findUserByUsername("nobody")).toBeUndefined();

        const byId = (list: UserRecord[]) => [...list].sort((x, y) => (x.userId < y.userId ? -1 : 1));
        expect(byId(await store.accounts.findUsersByIds([bob.userId, "u_unknown", alice.userId]))).toEqual(byId([alice, bob]));
        expect(await store.accounts.findUsersByIds([bob.userId])).toEqual([bob]);
        expect(await store.accounts.findUsersByIds([])).toEqual([]);
        expect(byId(await store.accounts.findUsersByUsernames([alice.username, "nobody", bob.username]))).toEqual(byId([alice, bob]));
        expect(await store.accounts.findUsersByUsernames(["nobody"])).toEqual([]);
        expect(await store.accounts.findUsersByUsernames([])).toEqual([]);
      });

      it("stores devices and rotates a refresh token only from its current hash", async () => {
        const [alice] = await users("alice");
        const phone = device(alice, "hash-1");
        const laptop = device(alice, "hash-1");
        await store.accounts.createDevice(phone);
        await store.accounts.createDevice(laptop);
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual(phone);
        expect((await store.accounts.getDevice(phone.deviceId))?.revokedAt).toBeUndefined();
        expect(await store.accounts.getDevice("dev_unknown")).toBeUndefined();

        expect(await store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-2", at(7_200_000))).toBe(true);
        expect(await store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-3", at(9_000_000))).toBe(false);
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual({ ...phone, refreshTokenHash: "hash-2", refreshExpiresAt: at(7_200_000) });
        expect(await store.accounts.rotateRefreshToken(phone.deviceId, "hash-2", "hash-3", at(9_000_000))).toBe(true);
        expect(await store.accounts.rotateRefreshToken("dev_unknown", "hash-1", "hash-2", at(1))).toBe(false);
        // Devices are independent even when their hashes happen to match.
        expect(await store.accounts.getDevice(laptop.deviceId)).toEqual(laptop);
      });

      it("lets exactly one of two concurrent rotations with the same token win", async () => {
        const [alice] = await users("alice");
        const phone = device(alice, "hash-1");
        await store.accounts.createDevice(phone);
        const outcomes = await Promise.all([
          store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-a", at(1)),
          store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-b", at(2)),
        ]);
        expect(outcomes.filter(Boolean)).toHaveLength(1);
        const winner = outcomes[0] ? "hash-a" : "hash-b";
        expect((await store.accounts.getDevice(phone.deviceId))?.refreshTokenHash).toBe(winner);
      });

      it("refuses to rotate the token of a revoked device", async () => {
        const [alice] = await users("alice");
        const phone = device(alice, "hash-1");
        await store.accounts.createDevice(phone);
        await store.accounts.revokeDevice(phone.deviceId, at(500));
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual({ ...phone, revokedAt: at(500) });
        expect(await store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-2", at(1))).toBe(false);
        expect((await store.accounts.getDevice(phone.deviceId))?.refreshTokenHash).toBe("hash-1");
      });
    });

    describe("close", () => {
      it("completes the appends still pending, then refuses new ones", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const pending = Array.from({ length: 20 }, () => store.messages.append(message(ab, alice)));
        await close(store);
        const results = await Promise.all(pending);
        expect(seqs(results.map((r) => r.message)).sort((a, b) => (a < b ? -1 : 1))).toEqual(range(1, 20));
        await expect(store.messages.append(message(ab, alice))).rejects.toBeInstanceOf(Error);
      });

      it("keeps everything across close and reopen", async () => {
        const [alice, bob] = await users("alice", "bob");
        const phone = device(alice, "hash-1");
        await store.accounts.createDevice(phone);
        await store.accounts.revokeDevice(phone.deviceId, at(77));
        const ab = await direct(alice, bob);
        const appended = await Promise.all(Array.from({ length: 30 }, (_, i) => store.messages.append(message(ab, i % 2 ? bob : alice))));
        // Left pending on purpose: close() must finish it before the data is reopened.
        const pending = store.messages.append(message(ab, alice, { clientMsgId: "at-close-01" }));

        await reopen();
        const last = await pending;
        expect(last.message.seq).toBe(31n);

        expect(await store.accounts.findUserByUsername(alice.username)).toEqual(alice);
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual({ ...phone, revokedAt: at(77) });
        expect(await store.conversations.getConversation(ab)).toEqual({
          conversationId: ab,
          kind: "direct",
          title: "",
          createdAt: at(0),
          lastSeq: 31n,
        });
        expect(await store.conversations.isMember(ab, bob.userId)).toBe(true);
        const stored = await readAll(ab);
        expect(seqs(stored)).toEqual(range(1, 31));
        const bySeq = new Map([...appended.map((r) => r.message), last.message].map((m) => [m.seq, m]));
        for (const m of stored) expect(m).toEqual(bySeq.get(m.seq));

        // The sequencer and the idempotency keys survive too.
        expect((await store.messages.append(message(ab, bob))).message.seq).toBe(32n);
        expect(await store.messages.append(message(ab, alice, { clientMsgId: "at-close-01" }))).toEqual({ message: last.message, duplicate: true });
      });
    });
  });
}
