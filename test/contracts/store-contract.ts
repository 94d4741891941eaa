import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  GroupFullError,
  type ChatStore,
  type ConversationHead,
  type ConversationRecord,
  type DeviceRecord,
  type GroupRoleName,
  type InboxRow,
  type MemberRecord,
  type MembershipChange,
  type NewMessage,
  type StoredMessage,
  type UserRecord,
} from "../../services/ports/index.js";

/** Releases what one `createStore()` made (a file, a keyspace), after the suite has closed the store. */
export type StoreCleanup = (store: ChatStore) => Promise<void> | void;

export type StoreContractSection = "messages.append" | "messages.readRange" | "conversations" | "groups" | "receipts" | "inbox" | "accounts" | "close";

export interface StoreContractOptions {
  /** Opens the data of `closed` (already closed) again: every engine persists. */
  readonly reopen: (closed: ChatStore) => Promise<ChatStore> | ChatStore;
  /** Runs only these sections (the others are reported as skipped): for a second configuration of an engine. */
  readonly only?: readonly StoreContractSection[];
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
  // A run limited to some sections leaves the others out rather than listing them as skipped.
  const section = (name: StoreContractSection, body: () => void) => {
    if (!options.only || options.only.includes(name)) describe(name, body);
  };
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
    const ascending = (list: readonly bigint[]) => [...list].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const sorted = (list: readonly string[]) => [...list].sort();
    const byUserId = <T extends { userId: string }>(list: readonly T[]) => [...list].sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));

    /** A system event (what the groups service appends for a change) by `actor`. */
    function systemEvent(conversationId: string, actor: UserRecord, extra: Partial<NewMessage> = {}): NewMessage {
      return message(conversationId, actor, { kind: "system", text: "", systemJson: `{"change":${counter}}`, ...extra });
    }

    /** A group owned by `owner` with `others` as plain members; its event is sent at `createdAt`. */
    async function group(owner: UserRecord, others: readonly UserRecord[], createdAt = at(1_000), title = "Group") {
      const conversationId = unique("g");
      const event = systemEvent(conversationId, owner, { sentAt: createdAt });
      const members = [{ userId: owner.userId, role: "owner" as GroupRoleName }, ...others.map((u) => ({ userId: u.userId, role: "member" as GroupRoleName }))];
      const created = await store.conversations.createGroup({ conversationId, title, createdAt, members }, event);
      expect(created.event).toEqual({ ...event, seq: 1n });
      return conversationId;
    }

    function change(conversationId: string, actor: UserRecord, membership: MembershipChange, extra: Partial<NewMessage> = {}): Promise<StoredMessage> {
      return store.conversations.changeMembership(conversationId, membership, systemEvent(conversationId, actor, extra));
    }

    const member = (conversationId: string, who: UserRecord, role: GroupRoleName, joinedSeq: bigint, joinedAt: Date): MemberRecord => ({
      conversationId,
      userId: who.userId,
      role,
      joinedSeq,
      joinedAt,
    });

    section("messages.append", () => {
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

      it("round-trips attachment references, and leaves them out of a message that has none", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const attachments = [
          { attachmentId: "a_1", contentType: "image/png", size: 1234, fileName: "cat.png" },
          { attachmentId: "a_2", contentType: "application/pdf", size: 5, fileName: "" },
        ];
        const withFiles = message(ab, alice, { attachments });
        const { message: stored } = await store.messages.append(withFiles);
        expect(stored).toEqual({ ...withFiles, seq: 1n });
        const { message: plain } = await store.messages.append(message(ab, alice, { attachments: [] }));
        expect(plain).not.toHaveProperty("attachments");
        expect(await readAll(ab)).toEqual([stored, plain]);
        await reopen();
        expect(await readAll(ab)).toEqual([stored, plain]);
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

    section("messages.readRange", () => {
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

    section("conversations", () => {
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

    section("groups", () => {
      it("creates a group with its event as seq 1; every member joins at 1 with a read watermark of 1", async () => {
        const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
        const conversationId = unique("g");
        const event = systemEvent(conversationId, alice, { sentAt: at(2_000) });
        const created = await store.conversations.createGroup(
          {
            conversationId,
            title: "Climbing",
            createdAt: at(1_500),
            members: [
              { userId: alice.userId, role: "owner" },
              { userId: bob.userId, role: "admin" },
              { userId: carol.userId, role: "member" },
            ],
          },
          event,
        );
        const record: ConversationRecord = { conversationId, kind: "group", title: "Climbing", createdAt: at(1_500), lastSeq: 1n };
        expect(created).toEqual({ conversation: record, event: { ...event, seq: 1n } });
        expect(typeof created.event.seq).toBe("bigint");
        expect(await store.conversations.getConversation(conversationId)).toEqual(record);
        expect(await readAll(conversationId)).toEqual([created.event]);

        const expected = byUserId([
          member(conversationId, alice, "owner", 1n, at(1_500)),
          member(conversationId, bob, "admin", 1n, at(1_500)),
          member(conversationId, carol, "member", 1n, at(1_500)),
        ]);
        // Same joinedSeq for all: ordered by userId.
        expect(await store.conversations.listMembers(conversationId)).toEqual(expected);
        for (const m of expected) {
          const stored = await store.conversations.getMember(conversationId, m.userId);
          expect(stored).toEqual(m);
          expect(stored?.leftSeq).toBeUndefined();
        }
        expect(sorted(await store.conversations.listMemberIds(conversationId))).toEqual(sorted([alice.userId, bob.userId, carol.userId]));
        for (const who of [alice, bob, carol]) {
          expect(await store.conversations.isMember(conversationId, who.userId)).toBe(true);
          expect(await store.receipts.readSeq(conversationId, who.userId)).toBe(1n);
          expect(await store.conversations.listGroups(who.userId)).toEqual([record]);
          expect(await store.conversations.listHeads(who.userId)).toEqual([{ conversationId, lastSeq: 1n }]);
        }
        expect(await store.conversations.isMember(conversationId, dave.userId)).toBe(false);
        expect(await store.conversations.getMember(conversationId, dave.userId)).toBeUndefined();
        expect(await store.receipts.readSeq(conversationId, dave.userId)).toBe(0n);
        expect(await store.conversations.listGroups(dave.userId)).toEqual([]);

        // listGroups lists groups only, every one the user is in.
        const ad = await direct(alice, dave);
        const second = await group(dave, [alice]);
        const aliceGroups = await store.conversations.listGroups(alice.userId);
        expect(aliceGroups.map((g) => g.conversationId).sort()).toEqual(sorted([conversationId, second]));
        expect(aliceGroups.every((g) => g.kind === "group")).toBe(true);
        expect(await store.conversations.getMember(ad, alice.userId)).toEqual(member(ad, alice, "member", 0n, at(0)));
      });

      it("refuses a group whose id is taken, storing nothing", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const conversationId = await group(alice, [bob]);
        const again = store.conversations.createGroup(
          { conversationId, title: "Other", createdAt: at(9_000), members: [{ userId: carol.userId, role: "owner" }] },
          systemEvent(conversationId, carol),
        );
        await expect(again).rejects.toBeInstanceOf(Error);
        expect(await store.conversations.getConversation(conversationId)).toMatchObject({ title: "Group", lastSeq: 1n });
        expect(await store.conversations.isMember(conversationId, carol.userId)).toBe(false);
        expect(await readAll(conversationId)).toHaveLength(1);
        expect(await store.receipts.readSeq(conversationId, carol.userId)).toBe(0n);
      });

      it("gives each add, remove, role change and rename the next seq, and applies it", async () => {
        const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
        const g = await group(alice, [bob], at(1_000));
        const events: StoredMessage[] = [];
        const record = async (input: Promise<StoredMessage>) => {
          const event = await input;
          events.push(event);
          return event;
        };

        const added = await record(change(g, alice, { add: [{ userId: carol.userId, role: "member" }] }, { sentAt: at(2_000) }));
        expect(added.seq).toBe(2n);
        expect(added.kind).toBe("system");
        expect(await store.conversations.getMember(g, carol.userId)).toEqual(member(g, carol, "member", 2n, at(2_000)));
        expect(await store.conversations.isMember(g, carol.userId)).toBe(true);
        expect(await store.receipts.readSeq(g, carol.userId)).toBe(2n);

        expect((await record(change(g, alice, { roles: [{ userId: bob.userId, role: "admin" }] }))).seq).toBe(3n);
        expect(await store.conversations.getMember(g, bob.userId)).toEqual(member(g, bob, "admin", 1n, at(1_000)));

        expect((await record(change(g, bob, { title: "Renamed" }))).seq).toBe(4n);
        expect(await store.conversations.getConversation(g)).toMatchObject({ title: "Renamed", lastSeq: 4n });

        const removal = await record(change(g, alice, { remove: [bob.userId] }, { sentAt: at(5_000) }));
        expect(removal.seq).toBe(5n);
        expect(await store.conversations.isMember(g, bob.userId)).toBe(false);
        expect(await store.conversations.getMember(g, bob.userId)).toEqual({ ...member(g, bob, "admin", 1n, at(1_000)), leftSeq: 5n });
        expect(await store.conversations.listMembers(g)).toEqual([member(g, alice, "owner", 1n, at(1_000)), member(g, carol, "member", 2n, at(2_000))]);
        expect(sorted(await store.conversations.listMemberIds(g))).toEqual(sorted([alice.userId, carol.userId]));
        expect(await store.conversations.listGroups(bob.userId)).toEqual([]);
        // The actor of each event has read up to it; bob's watermark stays where his own rename put it.
        expect(await store.receipts.readSeq(g, alice.userId)).toBe(5n);
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(4n);

        expect(await readAll(g)).toEqual([expect.objectContaining({ seq: 1n }), ...events]);
        expect(seqs(await readAll(g))).toEqual(range(1, 5));

        // A former member sees up to the event that removed them, however far the group goes on.
        expect(await store.conversations.listHeads(bob.userId)).toEqual([{ conversationId: g, lastSeq: 5n }]);
        await store.messages.append(message(g, alice));
        await store.messages.append(message(g, carol));
        expect(await store.conversations.listHeads(bob.userId)).toEqual([{ conversationId: g, lastSeq: 5n }]);
        expect(await store.conversations.listHeads(alice.userId)).toEqual([{ conversationId: g, lastSeq: 7n }]);

        // Rejoining resets the row: new role, joined at the event, no left seq, watermark at the event.
        const rejoin = await change(g, carol, { add: [{ userId: bob.userId, role: "member" }, { userId: dave.userId, role: "admin" }] }, { sentAt: at(8_000) });
        expect(rejoin.seq).toBe(8n);
        const bobAgain = await store.conversations.getMember(g, bob.userId);
        expect(bobAgain).toEqual(member(g, bob, "member", 8n, at(8_000)));
        expect(bobAgain?.leftSeq).toBeUndefined();
        expect(await store.conversations.isMember(g, bob.userId)).toBe(true);
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(8n);
        expect(await store.conversations.listHeads(bob.userId)).toEqual([{ conversationId: g, lastSeq: 8n }]);
        expect((await store.conversations.listGroups(bob.userId)).map((c) => c.conversationId)).toEqual([g]);
        // Oldest first, ties by userId.
        expect(await store.conversations.listMembers(g)).toEqual([
          member(g, alice, "owner", 1n, at(1_000)),
          member(g, carol, "member", 2n, at(2_000)),
          ...byUserId([member(g, bob, "member", 8n, at(8_000)), member(g, dave, "admin", 8n, at(8_000))]),
        ]);
        expect(await store.receipts.readSeq(g, carol.userId)).toBe(8n);
      });

      it("rejects a change to a conversation that does not exist, without disturbing the others", async () => {
        const [alice, bob] = await users("alice", "bob");
        const g = await group(alice, [bob]);
        const settled = await Promise.allSettled([
          store.messages.append(message(g, alice)),
          change("g_nowhere", alice, { add: [{ userId: bob.userId, role: "member" }] }),
          store.messages.append(message(g, bob)),
        ]);
        expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
        expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
        expect(seqs(await readAll(g))).toEqual(range(1, 3));
        expect(await store.conversations.getConversation("g_nowhere")).toBeUndefined();
        expect(await store.conversations.getMember("g_nowhere", bob.userId)).toBeUndefined();
      });

      it("keeps seqs gapless when 200 appends and 10 membership changes run at once", async () => {
        const [alice, bob] = await users("alice", "bob");
        const joiners = await users("j", "k", "l", "m", "n");
        const g = await group(alice, [bob]);
        const calls: Array<Promise<StoredMessage>> = [];
        const changes: Array<{ index: number; joiner?: UserRecord }> = [];
        for (let i = 0; i < 210; i++) {
          if (i % 21 === 10) {
            const k = changes.length;
            const joiner = k % 2 === 0 ? joiners[k / 2] : undefined;
            changes.push({ index: calls.length, joiner });
            calls.push(change(g, alice, joiner ? { add: [{ userId: joiner.userId, role: "member" }] } : { title: `title ${k}` }));
          } else {
            calls.push(store.messages.append(message(g, i % 2 ? bob : alice)).then((r) => r.message));
          }
        }
        expect(changes).toHaveLength(10);
        const results = await Promise.all(calls);
        expect(ascending(seqs(results))).toEqual(range(2, 211));
        const stored = await readAll(g);
        expect(seqs(stored)).toEqual(range(1, 211));
        const bySeq = new Map(stored.map((m) => [m.seq, m]));
        for (const result of results) expect(bySeq.get(result.seq)).toEqual(result);
        expect((await store.conversations.getConversation(g))?.lastSeq).toBe(211n);
        for (const { index, joiner } of changes) {
          expect(results[index].kind).toBe("system");
          if (joiner) expect((await store.conversations.getMember(g, joiner.userId))?.joinedSeq).toBe(results[index].seq);
        }
        expect(await store.conversations.listMembers(g)).toHaveLength(7);
      });

      it("refuses a change past maxMembers, storing nothing and taking no seq", async () => {
        const [alice, bob, carol, dave, erin] = await users("alice", "bob", "carol", "dave", "erin");
        const g = await group(alice, [bob, carol]);
        const before = await store.conversations.listMembers(g);
        const tooMany = systemEvent(g, alice);
        const refused = store.conversations.changeMembership(
          g,
          { add: [{ userId: dave.userId, role: "member" }, { userId: erin.userId, role: "member" }], title: "Never", maxMembers: 4 },
          tooMany,
        );
        await expect(refused).rejects.toBeInstanceOf(GroupFullError);
        await expect(refused).rejects.toMatchObject({ conversationId: g, maxMembers: 4 });
        expect(await store.conversations.getConversation(g)).toMatchObject({ title: "Group", lastSeq: 1n });
        expect(await store.conversations.listMembers(g)).toEqual(before);
        expect(await store.conversations.getMember(g, dave.userId)).toBeUndefined();
        expect(await store.receipts.readSeq(g, alice.userId)).toBe(1n);
        expect(seqs(await readAll(g))).toEqual([1n]);

        // Swapping a member out for another stays within the cap; the refused event's key was not claimed.
        const swapped = await store.conversations.changeMembership(
          g,
          { add: [{ userId: dave.userId, role: "member" }, { userId: erin.userId, role: "member" }], remove: [bob.userId], maxMembers: 4 },
          tooMany,
        );
        expect(swapped).toEqual({ ...tooMany, seq: 2n });
        expect(sorted(await store.conversations.listMemberIds(g))).toEqual(sorted([alice.userId, carol.userId, dave.userId, erin.userId]));
        // A former member coming back counts again.
        await expect(change(g, alice, { add: [{ userId: bob.userId, role: "member" }], maxMembers: 4 })).rejects.toBeInstanceOf(GroupFullError);
        expect(await store.conversations.isMember(g, bob.userId)).toBe(false);
        // Adding someone already in, or leaving, never fails on the cap, even under a cap lowered below the size.
        // Adding a current member leaves their row as it was.
        expect((await change(g, alice, { add: [{ userId: carol.userId, role: "admin" }], maxMembers: 4 })).seq).toBe(3n);
        expect(await store.conversations.getMember(g, carol.userId)).toEqual(member(g, carol, "member", 1n, at(1_000)));
        expect((await change(g, alice, { remove: [erin.userId], maxMembers: 2 })).seq).toBe(4n);
        expect(await store.conversations.listMembers(g)).toHaveLength(3);
      });

      it("of two concurrent adds that together pass maxMembers, lets exactly the one that fits succeed", async () => {
        const [alice, bob, carol, dave, erin] = await users("alice", "bob", "carol", "dave", "erin");
        const g = await group(alice, [bob, carol]);
        const settled = await Promise.allSettled([
          change(g, alice, { add: [{ userId: dave.userId, role: "member" }], maxMembers: 4 }),
          change(g, bob, { add: [{ userId: erin.userId, role: "member" }], maxMembers: 4 }),
        ]);
        const fulfilled = settled.filter((s) => s.status === "fulfilled");
        const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
        expect(fulfilled).toHaveLength(1);
        expect(rejected).toHaveLength(1);
        expect(rejected[0].reason).toBeInstanceOf(GroupFullError);
        expect((fulfilled[0] as PromiseFulfilledResult<StoredMessage>).value.seq).toBe(2n);
        const [winner, loser] = settled[0].status === "fulfilled" ? [dave, erin] : [erin, dave];
        expect(await store.conversations.isMember(g, winner.userId)).toBe(true);
        expect(await store.conversations.isMember(g, loser.userId)).toBe(false);
        expect(await store.conversations.getMember(g, loser.userId)).toBeUndefined();
        expect(await store.conversations.listMembers(g)).toHaveLength(4);
        expect(seqs(await readAll(g))).toEqual([1n, 2n]);
        expect((await store.conversations.getConversation(g))?.lastSeq).toBe(2n);
      });
    });

    section("receipts", () => {
      it("moves the sender's read watermark on append, and nobody else's", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const g = await group(alice, [bob, carol]);
        await store.messages.append(message(g, alice));
        const last = await store.messages.append(message(g, alice));
        expect(last.message.seq).toBe(3n);
        expect(await store.receipts.readSeq(g, alice.userId)).toBe(3n);
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(1n);
        expect((await store.messages.append(message(g, bob))).message.seq).toBe(4n);
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(4n);
        expect(await store.receipts.readSeq(g, alice.userId)).toBe(3n);
        expect(await store.receipts.readSeq(g, carol.userId)).toBe(1n);
        // A system event moves its actor's.
        expect((await change(g, carol, { title: "By carol" })).seq).toBe(5n);
        expect(await store.receipts.readSeq(g, carol.userId)).toBe(5n);
        expect(await store.receipts.readSeq(g, alice.userId)).toBe(3n);

        const ab = await direct(alice, bob);
        expect(await store.receipts.readSeq(ab, alice.userId)).toBe(0n);
        await store.messages.append(message(ab, bob));
        expect(await store.receipts.readSeq(ab, bob.userId)).toBe(1n);
        expect(await store.receipts.readSeq(ab, alice.userId)).toBe(0n);
        // A repeat stores nothing and moves nothing.
        const first = await store.messages.append(message(ab, alice, { clientMsgId: "rcpt-0001" }));
        await store.messages.append(message(ab, bob));
        expect((await store.messages.append(message(ab, alice, { clientMsgId: "rcpt-0001" }))).duplicate).toBe(true);
        expect(await store.receipts.readSeq(ab, alice.userId)).toBe(first.message.seq);
      });

      it("moves a read watermark only forwards", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        for (let i = 0; i < 6; i++) await store.messages.append(message(ab, alice));
        expect(await store.receipts.markRead(ab, bob.userId, 4n, at(100))).toEqual({ seq: 4n, moved: true });
        expect(await store.receipts.readSeq(ab, bob.userId)).toBe(4n);
        expect(await store.receipts.markRead(ab, bob.userId, 2n, at(200))).toEqual({ seq: 4n, moved: false });
        expect(await store.receipts.markRead(ab, bob.userId, 4n, at(300))).toEqual({ seq: 4n, moved: false });
        expect(await store.receipts.readSeq(ab, bob.userId)).toBe(4n);
        expect(await store.receipts.readersOf(ab, 4n)).toEqual(byUserId([
          { userId: alice.userId, seq: 4n, at: (await readAll(ab))[3].sentAt },
          { userId: bob.userId, seq: 4n, at: at(100) },
        ]));
        expect(await store.receipts.markRead(ab, bob.userId, 6n, at(400))).toEqual({ seq: 6n, moved: true });
        expect(await store.receipts.readSeq(ab, bob.userId)).toBe(6n);
        // The sender's own watermark is unaffected, and stays monotone under markRead too.
        expect(await store.receipts.markRead(ab, alice.userId, 3n, at(500))).toEqual({ seq: 6n, moved: false });
      });

      it("tells who read a seq and exactly when they first got there", async () => {
        const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
        const g = await group(alice, [bob, carol, dave], at(1_000));
        const sent: StoredMessage[] = [];
        for (let i = 0; i < 5; i++) sent.push((await store.messages.append(message(g, alice, { sentAt: at(2_000 + i) }))).message);
        expect(seqs(sent)).toEqual(range(2, 6));
        await store.receipts.markRead(g, bob.userId, 3n, at(3_001));
        await store.receipts.markRead(g, carol.userId, 4n, at(3_002));
        await store.receipts.markRead(g, bob.userId, 6n, at(3_003));

        // alice reached 3 when she sent it; bob at his first mark; carol jumped past it; dave is below.
        expect(byUserId(await store.receipts.readersOf(g, 3n))).toEqual(
          byUserId([
            { userId: alice.userId, seq: 3n, at: at(2_001) },
            { userId: bob.userId, seq: 3n, at: at(3_001) },
            { userId: carol.userId, seq: 4n, at: at(3_002) },
          ]),
        );
        expect(byUserId(await store.receipts.readersOf(g, 5n))).toEqual(
          byUserId([
            { userId: alice.userId, seq: 5n, at: at(2_003) },
            { userId: bob.userId, seq: 6n, at: at(3_003) },
          ]),
        );
        // Everyone reached 1 when the group was made.
        expect(byUserId(await store.receipts.readersOf(g, 1n))).toEqual(
          byUserId([alice, bob, carol, dave].map((u) => ({ userId: u.userId, seq: 1n, at: at(1_000) }))),
        );
        expect(await store.receipts.readersOf(g, 7n)).toEqual([]);
        expect(await store.receipts.readersOf("g_unknown", 1n)).toEqual([]);
      });

      it("keeps one monotone delivery cursor per device", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const g = await group(alice, [bob, carol]);
        const other = await direct(bob, carol);
        const [phone, laptop, carolPhone] = [unique("dev"), unique("dev"), unique("dev")];

        expect(await store.receipts.markDelivered(g, bob.userId, phone, 3n, at(10))).toEqual({ seq: 3n, moved: true });
        expect(await store.receipts.markDelivered(g, bob.userId, laptop, 1n, at(11))).toEqual({ seq: 1n, moved: true });
        expect(await store.receipts.markDelivered(g, bob.userId, phone, 2n, at(12))).toEqual({ seq: 3n, moved: false });
        expect(await store.receipts.markDelivered(g, bob.userId, phone, 3n, at(13))).toEqual({ seq: 3n, moved: false });
        expect(await store.receipts.markDelivered(g, bob.userId, phone, 5n, at(14))).toEqual({ seq: 5n, moved: true });
        expect(await store.receipts.markDelivered(g, carol.userId, carolPhone, 4n, at(15))).toEqual({ seq: 4n, moved: true });
        // The same device in another conversation has a cursor of its own.
        expect(await store.receipts.markDelivered(other, bob.userId, phone, 1n, at(16))).toEqual({ seq: 1n, moved: true });

        const key = (c: { userId: string; deviceId: string }) => `${c.userId} ${c.deviceId}`;
        const byDevice = <T extends { userId: string; deviceId: string }>(list: readonly T[]) => [...list].sort((x, y) => (key(x) < key(y) ? -1 : 1));
        expect(byDevice(await store.receipts.deliveryCursors(g))).toEqual(
          byDevice([
            { userId: bob.userId, deviceId: phone, seq: 5n, at: at(14) },
            { userId: bob.userId, deviceId: laptop, seq: 1n, at: at(11) },
            { userId: carol.userId, deviceId: carolPhone, seq: 4n, at: at(15) },
          ]),
        );
        expect(await store.receipts.deliveryCursors(other)).toEqual([{ userId: bob.userId, deviceId: phone, seq: 1n, at: at(16) }]);
        expect(await store.receipts.deliveryCursors("g_unknown")).toEqual([]);
        // Delivery is not reading.
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(1n);
      });

      it("lists the distinct senders of the text messages in a seq range", async () => {
        const [alice, bob, carol] = await users("alice", "bob", "carol");
        const g = await group(alice, [bob, carol]); // 1: system, by alice
        await store.messages.append(message(g, alice)); // 2
        await store.messages.append(message(g, bob)); // 3
        await store.messages.append(message(g, alice)); // 4
        await change(g, carol, { title: "carol's" }); // 5: system, by carol
        await store.messages.append(message(g, bob)); // 6
        const between = async (after: bigint, upTo: bigint) => sorted(await store.receipts.sendersBetween(g, after, upTo));
        expect(await between(0n, 6n)).toEqual(sorted([alice.userId, bob.userId]));
        expect(await between(0n, 1n)).toEqual([]);
        expect(await between(1n, 2n)).toEqual([alice.userId]);
        expect(await between(2n, 4n)).toEqual(sorted([alice.userId, bob.userId]));
        expect(await between(3n, 4n)).toEqual([alice.userId]);
        expect(await between(4n, 5n)).toEqual([]);
        expect(await between(4n, 6n)).toEqual([bob.userId]);
        expect(await between(6n, 100n)).toEqual([]);
        expect(await between(3n, 3n)).toEqual([]);
        expect(await store.receipts.sendersBetween("g_unknown", 0n, 10n)).toEqual([]);
      });
    });

    section("inbox", () => {
      it("lists current and former conversations by last visible activity, in keyset pages", async () => {
        const [alice, bob, carol, dave, erin] = await users("alice", "bob", "carol", "dave", "erin");
        const ab = await direct(alice, bob); // empty: activity is its creation, at(0)
        const ac = await direct(alice, carol); // empty too: ties with ab, larger id first
        const ae = await direct(alice, erin);
        await store.messages.append(message(ae, erin, { sentAt: at(10_050) }));
        const g1 = await group(bob, [alice], at(10_100));
        const g2 = await group(carol, [alice, bob], at(10_200), "Left");
        await change(g2, carol, { remove: [alice.userId] }, { sentAt: at(10_300) }); // 2
        const ad = await direct(alice, dave);
        await store.messages.append(message(ad, dave, { sentAt: at(10_400) }));
        await store.messages.append(message(g1, bob, { sentAt: at(10_500) })); // 2
        await store.messages.append(message(g1, alice, { sentAt: at(10_600) })); // 3
        // After alice left: not hers to see, and it does not move her row.
        await store.messages.append(message(g2, carol, { sentAt: at(10_900) })); // 3
        await change(g2, carol, { title: "Renamed" }, { sentAt: at(11_000) }); // 4

        const row = (conversationId: string, visibleLastSeq: bigint, readSeq: bigint, lastActivityAt: Date, leftSeq?: bigint): InboxRow => ({
          conversation: expect.objectContaining({ conversationId }) as ConversationRecord,
          visibleLastSeq,
          readSeq,
          lastActivityAt,
          ...(leftSeq === undefined ? {} : { leftSeq }),
        });
        const expected = [
          row(g1, 3n, 3n, at(10_600)),
          row(ad, 1n, 0n, at(10_400)),
          row(g2, 2n, 1n, at(10_300), 2n),
          row(ae, 1n, 0n, at(10_050)),
          row(ac, 0n, 0n, at(0)),
          row(ab, 0n, 0n, at(0)),
        ];
        const inbox = await store.conversations.listInbox(alice.userId, { limit: 100 });
        expect(inbox).toEqual(expected);
        expect(inbox.map((r) => r.leftSeq)).toEqual([undefined, undefined, 2n, undefined, undefined, undefined]);
        expect(inbox[0].conversation).toEqual(await store.conversations.getConversation(g1));
        expect(inbox[2].conversation).toEqual(await store.conversations.getConversation(g2));
        expect(inbox[4].conversation).toEqual({ conversationId: ac, kind: "direct", title: "", createdAt: at(0), lastSeq: 0n });

        for (const limit of [1, 2, 4]) {
          const pages: InboxRow[][] = [];
          let after: { lastActivityAt: Date; conversationId: string } | undefined;
          for (;;) {
            const page = await store.conversations.listInbox(alice.userId, { limit, after });
            if (page.length === 0) break;
            expect(page.length).toBeLessThanOrEqual(limit);
            pages.push(page);
            const last = page[page.length - 1];
            after = { lastActivityAt: last.lastActivityAt, conversationId: last.conversation.conversationId };
            expect(pages.length).toBeLessThanOrEqual(6);
          }
          expect(pages.flat()).toEqual(expected);
        }

        // Reading moves readSeq; a new message moves the row to the top.
        await store.receipts.markRead(ad, alice.userId, 1n, at(12_000));
        await store.messages.append(message(ab, bob, { sentAt: at(12_100) }));
        const top = await store.conversations.listInbox(alice.userId, { limit: 3 });
        expect(top).toEqual([row(ab, 1n, 0n, at(12_100)), row(g1, 3n, 3n, at(10_600)), row(ad, 1n, 1n, at(10_400))]);

        expect(await store.conversations.listInbox(carol.userId, { limit: 10 })).toEqual([row(g2, 4n, 4n, at(11_000)), row(ac, 0n, 0n, at(0))]);
        expect(await store.conversations.listInbox(unique("u_nobody"), { limit: 10 })).toEqual([]);
      });
    });

    section("accounts", () => {
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
        // Read once before the revocation: an engine that keeps devices in memory must drop it.
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual(phone);
        await store.accounts.revokeDevice(phone.deviceId, at(500));
        expect(await store.accounts.getDevice(phone.deviceId)).toEqual({ ...phone, revokedAt: at(500) });
        expect(await store.accounts.rotateRefreshToken(phone.deviceId, "hash-1", "hash-2", at(1))).toBe(false);
        expect((await store.accounts.getDevice(phone.deviceId))?.refreshTokenHash).toBe("hash-1");
      });
    });

    section("close", () => {
      it("completes the appends still pending, then refuses new ones", async () => {
        const [alice, bob] = await users("alice", "bob");
        const ab = await direct(alice, bob);
        const g = await group(alice, [bob]);
        const pending = Array.from({ length: 20 }, () => store.messages.append(message(ab, alice)));
        const pendingChange = change(g, alice, { title: "at close" });
        await close(store);
        const results = await Promise.all(pending);
        expect(seqs(results.map((r) => r.message)).sort((a, b) => (a < b ? -1 : 1))).toEqual(range(1, 20));
        expect((await pendingChange).seq).toBe(2n);
        await expect(store.messages.append(message(ab, alice))).rejects.toBeInstanceOf(Error);
        await expect(change(g, alice, { title: "after close" })).rejects.toBeInstanceOf(Error);
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

      it("keeps groups, memberships, watermarks, receipts and the inbox across close and reopen", async () => {
        const [alice, bob, carol, dave] = await users("alice", "bob", "carol", "dave");
        const g = await group(alice, [bob, carol], at(1_000), "Durable"); // 1
        await change(g, alice, { roles: [{ userId: bob.userId, role: "admin" }] }, { sentAt: at(2_000) }); // 2
        await store.messages.append(message(g, bob, { sentAt: at(3_000) })); // 3
        await change(g, bob, { remove: [carol.userId] }, { sentAt: at(4_000) }); // 4
        await store.messages.append(message(g, alice, { sentAt: at(5_000) })); // 5
        expect(await store.receipts.markRead(g, bob.userId, 5n, at(5_500))).toEqual({ seq: 5n, moved: true });
        await store.receipts.markDelivered(g, bob.userId, "dev_phone", 5n, at(5_600));
        await store.receipts.markDelivered(g, alice.userId, "dev_laptop", 4n, at(5_700));
        // Left pending on purpose: close() must finish it before the data is reopened.
        const pending = change(g, alice, { add: [{ userId: dave.userId, role: "member" }], title: "Still durable" }, { sentAt: at(6_000) });

        await reopen();
        const added = await pending;
        expect(added.seq).toBe(6n);

        expect(await store.conversations.getConversation(g)).toEqual({ conversationId: g, kind: "group", title: "Still durable", createdAt: at(1_000), lastSeq: 6n });
        expect(seqs(await readAll(g))).toEqual(range(1, 6));
        expect((await readAll(g))[5]).toEqual(added);
        expect(await store.conversations.listMembers(g)).toEqual([
          ...byUserId([member(g, alice, "owner", 1n, at(1_000)), member(g, bob, "admin", 1n, at(1_000))]),
          member(g, dave, "member", 6n, at(6_000)),
        ]);
        expect(await store.conversations.getMember(g, carol.userId)).toEqual({ ...member(g, carol, "member", 1n, at(1_000)), leftSeq: 4n });
        expect(await store.conversations.isMember(g, carol.userId)).toBe(false);
        expect(await store.conversations.listGroups(carol.userId)).toEqual([]);
        expect((await store.conversations.listGroups(dave.userId)).map((c) => c.conversationId)).toEqual([g]);
        expect(await store.conversations.listHeads(carol.userId)).toEqual([{ conversationId: g, lastSeq: 4n }]);

        expect(await store.receipts.readSeq(g, alice.userId)).toBe(6n);
        expect(await store.receipts.readSeq(g, bob.userId)).toBe(5n);
        expect(await store.receipts.readSeq(g, carol.userId)).toBe(1n);
        expect(await store.receipts.readSeq(g, dave.userId)).toBe(6n);
        expect(byUserId(await store.receipts.readersOf(g, 3n))).toEqual(
          byUserId([
            { userId: alice.userId, seq: 5n, at: at(5_000) },
            { userId: bob.userId, seq: 3n, at: at(3_000) },
            { userId: dave.userId, seq: 6n, at: at(6_000) },
          ]),
        );
        expect(byUserId(await store.receipts.deliveryCursors(g))).toEqual(
          byUserId([
            { userId: alice.userId, deviceId: "dev_laptop", seq: 4n, at: at(5_700) },
            { userId: bob.userId, deviceId: "dev_phone", seq: 5n, at: at(5_600) },
          ]),
        );
        expect(await store.receipts.markDelivered(g, bob.userId, "dev_phone", 4n, at(7_000))).toEqual({ seq: 5n, moved: false });
        expect(await store.receipts.markRead(g, bob.userId, 4n, at(7_000))).toEqual({ seq: 5n, moved: false });
        expect(await store.receipts.sendersBetween(g, 0n, 6n)).toEqual(expect.arrayContaining([alice.userId, bob.userId]));
        expect(await store.receipts.sendersBetween(g, 0n, 6n)).toHaveLength(2);

        expect(await store.conversations.listInbox(carol.userId, { limit: 10 })).toEqual([
          { conversation: expect.objectContaining({ conversationId: g }), visibleLastSeq: 4n, readSeq: 1n, lastActivityAt: at(4_000), leftSeq: 4n },
        ]);
        expect(await store.conversations.listInbox(bob.userId, { limit: 10 })).toEqual([
          { conversation: await store.conversations.getConversation(g), visibleLastSeq: 6n, readSeq: 5n, lastActivityAt: at(6_000) },
        ]);

        // The seq goes on after the reopen, through appends and changes alike.
        expect((await change(g, bob, { remove: [dave.userId] })).seq).toBe(7n);
        expect((await store.messages.append(message(g, bob))).message.seq).toBe(8n);
      });
    });
  });
}
