import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { GroupFullError, type ChatStore, type NewMessage, type StoredMessage } from "../../services/ports/index.js";
import { describeStoreContract } from "../../test/contracts/store-contract.js";
import { createSqliteStore, MIGRATIONS, SCHEMA_VERSION, type SqliteStore, type SqliteStoreOptions } from "./index.js";
import { migrate } from "./schema.js";

const root = mkdtempSync(join(tmpdir(), "store-sqlite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
const freshPath = () => join(root, `store-${++counter}`, "nested", "chat.db");
const paths = new Map<ChatStore, string>();

function open(path: string, options: Omit<SqliteStoreOptions, "path"> = {}): SqliteStore {
  const store = createSqliteStore({ path, ...options });
  paths.set(store, path);
  return store;
}

const removeStore = (store: ChatStore) => rmSync(dirname(dirname(paths.get(store)!)), { recursive: true, force: true });

// The whole contract on the main thread's writer; the sections whose writes go through the append
// thread once more with it. Starting a thread costs about a second per store, which the other
// sections would pay for nothing.
describeStoreContract("sqlite", () => open(freshPath(), { appendThread: false }), removeStore, {
  reopen: (closed) => open(paths.get(closed)!, { appendThread: false }),
});
describeStoreContract("sqlite with the append thread", () => open(freshPath()), removeStore, {
  reopen: (closed) => open(paths.get(closed)!),
  only: ["messages.append", "groups", "close"],
});

describe("SQLite engine", () => {
  const toClose: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const each of toClose.splice(0)) await each.close();
  });
  function track<T extends { close(): unknown }>(resource: T): T {
    toClose.push(resource);
    return resource;
  }

  let n = 0;
  const id = (prefix: string) => `${prefix}_${++n}`;
  function message(conversationId: string, extra: Partial<NewMessage> = {}): NewMessage {
    return {
      messageId: id("m"),
      conversationId,
      senderUserId: "u_alice",
      senderDeviceId: "dev_alice",
      clientMsgId: id("c"),
      kind: "text",
      text: "hi",
      sentAt: new Date(1_700_000_000_000 + n),
      ...extra,
    };
  }
  async function storeWithConversation(options: Omit<SqliteStoreOptions, "path"> = {}) {
    const path = freshPath();
    const store = track(open(path, options));
    await store.conversations.ensureDirectConversation("d_1", ["u_alice", "u_bob"], new Date(1_700_000_000_000));
    return { path, store };
  }

  describe("durability settings", () => {
    it("runs WAL, synchronous FULL, foreign keys and a busy timeout, at the latest schema", () => {
      const path = freshPath();
      const store = track(open(path));
      expect(existsSync(dirname(path))).toBe(true);
      expect(store.settings()).toEqual({
        path,
        journalMode: "wal",
        synchronous: 2,
        foreignKeys: true,
        busyTimeoutMs: 5_000,
        schemaVersion: SCHEMA_VERSION,
      });
      expect(track(open(freshPath(), { busyTimeoutMs: 250 })).settings().busyTimeoutMs).toBe(250);
    });

    it("writes through the WAL and leaves a WAL database behind after close", async () => {
      const { path, store } = await storeWithConversation();
      await store.messages.append(message("d_1"));
      expect(existsSync(`${path}-wal`)).toBe(true);
      await store.close();

      const raw = track(new Database(path, { readonly: true }));
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(["conversations", "delivery_cursors", "devices", "members", "messages", "read_marks", "users"]);
    });

    it("checkpoints the WAL into the database file from its worker, not inside a commit", async () => {
      const { path, store } = await storeWithConversation();
      for (let i = 0; i < 20; i++) await store.messages.append(message("d_1"));
      // The database file alone, without its WAL: it holds the messages once a checkpoint copied them.
      const inMainFile = () => {
        const copy = join(dirname(path), `copy-${Date.now()}.db`);
        copyFileSync(path, copy);
        const raw = new Database(copy, { readonly: true });
        try {
          const tables = raw.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'messages'").pluck().get();
          return tables ? Number(raw.prepare("SELECT count(*) FROM messages").pluck().get()) : 0;
        } finally {
          raw.close();
        }
      };
      const commitsCheckpoint = new Database(path).pragma("wal_autocheckpoint", { simple: true });
      expect(commitsCheckpoint).toBe(1000); // a fresh connection's default: the store's own is 0
      const deadline = Date.now() + 5_000;
      while (inMainFile() < 20 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(inMainFile()).toBe(20);
    });

    // Fails with appendThread: false, where the commit waits for this thread's event loop.
    it("commits sends on the append thread while the gateway's thread is busy", async () => {
      for (const appendThread of [true, false]) {
        const { path, store } = await storeWithConversation({ appendThread });
        const reader = track(new Database(path, { readonly: true }));
        const count = () => Number(reader.prepare("SELECT count(*) FROM messages").pluck().get());
        const appended = Array.from({ length: 20 }, () => store.messages.append(message("d_1")));
        await Promise.resolve(); // the sends cross to the thread in a microtask
        // Never yields: only another thread can commit meanwhile.
        const deadline = Date.now() + (appendThread ? 5_000 : 300);
        while (count() < 20 && Date.now() < deadline);
        expect({ appendThread, committedMeanwhile: count() }).toEqual({ appendThread, committedMeanwhile: appendThread ? 20 : 0 });
        expect((await Promise.all(appended)).map((r) => r.message.seq)).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
      }
    });

    it("resolves an append only once another connection can read it, and not before", async () => {
      const { path, store } = await storeWithConversation();
      const reader = track(new Database(path, { readonly: true }));
      const count = () => reader.prepare("SELECT count(*) FROM messages").pluck().get();
      const appended = store.messages.append(message("d_1"));
      expect(count()).toBe(0); // queued for the group commit, not written yet
      const { message: stored } = await appended;
      expect(count()).toBe(1);
      expect(reader.prepare("SELECT last_seq FROM conversations WHERE conversation_id = 'd_1'").pluck().get()).toBe(Number(stored.seq));
    });

    it("lets go of its files on close, and close settles in a process with nothing else to do", async () => {
      const { path, store } = await storeWithConversation({ appendThread: false });
      await store.messages.append(message("d_1"));
      await store.close();
      const openFiles = readdirSync("/proc/self/fd").map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return "";
        }
      });
      expect(openFiles.filter((file) => file.startsWith(path))).toEqual([]);

      const storeModule = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), "index.ts")).href;
      const script = `
        import { createSqliteStore } from ${JSON.stringify(storeModule)};
        const store = createSqliteStore({ path: ${JSON.stringify(freshPath())} });
        await store.close();
        console.log("closed");
      `;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise((resolveExit) => child.on("exit", resolveExit));
      expect({ code, output: output.trim() }).toEqual({ code: 0, output: "closed" });
    });

    it("keeps every acknowledged append when the process is killed with SIGKILL", async () => {
      const path = freshPath();
      const storeModule = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), "index.ts")).href;
      const script = `
        import { createSqliteStore } from ${JSON.stringify(storeModule)};
        const store = createSqliteStore({ path: ${JSON.stringify(path)} });
        await store.conversations.ensureDirectConversation("d_1", ["u_a", "u_b"], new Date());
        let i = 0;
        for (;;) {
          const batch = Array.from({ length: 25 }, () => {
            i++;
            return store.messages.append({ messageId: "m" + i, conversationId: "d_1", senderUserId: "u_a",
              senderDeviceId: "dev", clientMsgId: "c" + i, kind: "text", text: "x".repeat(200), sentAt: new Date() })
              .then((r) => process.stdout.write(r.message.messageId + " " + r.message.seq + "\\n"));
          });
          await Promise.race(batch);
        }
      `;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
      const acked = new Map<string, bigint>();
      let buffered = "";
      const exited = new Promise((resolveExit) => child.on("exit", resolveExit));
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          const [messageId, seq] = line.split(" ");
          acked.set(messageId, BigInt(seq));
        }
        if (acked.size >= 500 && !child.killed) child.kill("SIGKILL");
      });
      await exited;
      expect(acked.size).toBeGreaterThanOrEqual(500);

      const store = track(open(path));
      const stored = await store.messages.readRange("d_1", { limit: 1_000_000 });
      const storedIds = new Map(stored.map((m) => [m.messageId, m.seq]));
      for (const [messageId, seq] of acked) expect(storedIds.get(messageId)).toBe(seq);
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => BigInt(i + 1)));
      expect((await store.conversations.getConversation("d_1"))?.lastSeq).toBe(BigInt(stored.length));
    });
  });

  describe("group commit", () => {
    it("assigns seqs in call order, across batches, and the first of two repeats in a batch wins", async () => {
      const { store } = await storeWithConversation();
      const inputs = Array.from({ length: 2_500 }, () => message("d_1"));
      const repeat = message("d_1", { clientMsgId: inputs[10].clientMsgId });
      const results = await Promise.all([...inputs, repeat].map((m) => store.messages.append(m)));
      expect(results.slice(0, 2_500).map((r) => r.message.seq)).toEqual(inputs.map((_, i) => BigInt(i + 1)));
      expect(results[10].duplicate).toBe(false);
      expect(results[10].message.messageId).toBe(inputs[10].messageId);
      expect(results[2_500]).toEqual({ message: results[10].message, duplicate: true });
    });

    it("rejects every item of a batch whose transaction fails, then keeps working without a gap", async () => {
      const { path, store } = await storeWithConversation({ busyTimeoutMs: 20 });
      const blocker = track(new Database(path));
      blocker.exec("BEGIN IMMEDIATE");
      const doomed = [message("d_1"), message("d_1"), message("d_1")];
      const settled = await Promise.allSettled(doomed.map((m) => store.messages.append(m)));
      expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_BUSY" });
      blocker.exec("ROLLBACK");

      const retried = await Promise.all(doomed.map((m) => store.messages.append(m)));
      expect(retried.map((r) => [r.message.seq, r.duplicate])).toEqual([
        [1n, false],
        [2n, false],
        [3n, false],
      ]);
    });

    it("undoes only the item whose insert fails, leaving no gap in the seqs", async () => {
      const { store } = await storeWithConversation();
      const first = message("d_1");
      const settled = await Promise.allSettled([
        store.messages.append(first),
        store.messages.append(message("d_1", { messageId: first.messageId })), // reused id: a caller bug
        store.messages.append(message("d_1", { text: null as unknown as string })),
        store.messages.append(message("d_1")),
      ]);
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
      expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_CONSTRAINT_UNIQUE" });
      expect((settled[3] as PromiseFulfilledResult<{ message: { seq: bigint } }>).value.message.seq).toBe(2n);
      expect((await store.conversations.getConversation("d_1"))?.lastSeq).toBe(2n);
      expect((await store.messages.readRange("d_1", { limit: 10 })).map((m) => m.seq)).toEqual([1n, 2n]);
    });

    it("rejects appends to an unknown conversation with a plain Error naming it", async () => {
      const { store } = await storeWithConversation();
      await expect(store.messages.append(message("d_missing"))).rejects.toThrow(/d_missing/);
    });
  });

  describe("groups and receipts", () => {
    const system = (conversationId: string, extra: Partial<NewMessage> = {}) => message(conversationId, { kind: "system", text: "", systemJson: "{}", ...extra });
    async function storeWithGroup(options: Omit<SqliteStoreOptions, "path"> = {}) {
      const path = freshPath();
      const store = track(open(path, options));
      await store.conversations.createGroup(
        { conversationId: "g_1", title: "G", createdAt: new Date(1_700_000_000_000), members: [{ userId: "u_alice", role: "owner" }] },
        system("g_1"),
      );
      return { path, store };
    }

    // One writer takes them in call order; with the append thread, sends and membership changes are
    // two writers ordered by SQLite's lock, so concurrent calls may interleave, but every seq is taken
    // once and the membership is recorded at the seq its change got.
    for (const [maxBatch, appendThread] of [[1_000, false], [7, false], [1_000, true]] as const) {
      it(`sequences appends and membership changes ${appendThread ? "gaplessly on two writers" : "in call order"} (maxBatch ${maxBatch})`, async () => {
        const { store } = await storeWithGroup({ maxBatch, appendThread });
        const calls: Array<Promise<StoredMessage>> = [];
        for (let i = 0; i < 300; i++) {
          calls.push(
            i % 30 === 7
              ? store.conversations.changeMembership("g_1", { add: [{ userId: `u_${i}`, role: "member" }] }, system("g_1"))
              : store.messages.append(message("g_1")).then((r) => r.message),
          );
        }
        const results = await Promise.all(calls);
        const seqs = results.map((m) => m.seq);
        const expected = results.map((_, i) => BigInt(i + 2));
        expect(appendThread ? [...seqs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : seqs).toEqual(expected);
        expect((await store.conversations.getMember("g_1", "u_7"))?.joinedSeq).toBe(results[7].seq);
        const stored = await store.messages.readRange("g_1", { limit: 1_000 });
        expect(stored.map((m) => m.seq)).toEqual([1n, ...expected]);
      });
    }

    it("confines a refused change to itself: the appends around it in the batch keep gapless seqs", async () => {
      const { store } = await storeWithGroup();
      const settled = await Promise.allSettled([
        store.messages.append(message("g_1")),
        store.conversations.changeMembership("g_1", { add: [{ userId: "u_bob", role: "member" }], maxMembers: 1 }, system("g_1")),
        store.conversations.changeMembership("g_x", { title: "nowhere" }, system("g_x")),
        store.messages.append(message("g_1")),
      ]);
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
      expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(GroupFullError);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ name: "UnknownConversationError" });
      expect((await store.messages.readRange("g_1", { limit: 10 })).map((m) => m.seq)).toEqual([1n, 2n, 3n]);
    });

    it("treats a retried createGroup or changeMembership (same sender and clientMsgId) as the first try", async () => {
      const store = track(open(freshPath()));
      const event = system("g_1", { clientMsgId: "create-1" });
      const group = { conversationId: "g_1", title: "G", createdAt: new Date(1), members: [{ userId: "u_alice", role: "owner" as const }] };
      const first = await store.conversations.createGroup(group, event);
      // The service picks a fresh id for each try: the retry still gets the group of the first.
      const retry = await store.conversations.createGroup({ ...group, conversationId: "g_2" }, { ...event, conversationId: "g_2", messageId: "m_other" });
      expect(retry).toEqual(first);
      expect(await store.conversations.getConversation("g_2")).toBeUndefined();

      const add = system("g_1", { clientMsgId: "add-1" });
      const added = await store.conversations.changeMembership("g_1", { add: [{ userId: "u_bob", role: "member" }] }, add);
      await store.conversations.changeMembership("g_1", { remove: ["u_bob"] }, system("g_1"));
      expect(await store.conversations.changeMembership("g_1", { add: [{ userId: "u_bob", role: "member" }] }, add)).toEqual(added);
      expect(await store.conversations.isMember("g_1", "u_bob")).toBe(false);
      expect((await store.conversations.getConversation("g_1"))?.lastSeq).toBe(3n);

      // A key already used by an ordinary message is refused, and the group with it.
      await store.messages.append(message("g_1", { clientMsgId: "text-1" }));
      await expect(
        store.conversations.createGroup({ ...group, conversationId: "g_3" }, system("g_3", { clientMsgId: "text-1" })),
      ).rejects.toMatchObject({ code: "SQLITE_CONSTRAINT_UNIQUE" });
      expect(await store.conversations.getConversation("g_3")).toBeUndefined();
      expect(await store.conversations.getMember("g_3", "u_alice")).toBeUndefined();
    });

    it("commits each receipt before it resolves: another connection sees it at once", async () => {
      const { path, store } = await storeWithGroup();
      const reader = track(new Database(path, { readonly: true }));
      expect(await store.receipts.markRead("g_1", "u_bob", 1n, new Date(5))).toEqual({ seq: 1n, moved: true });
      expect(await store.receipts.markDelivered("g_1", "u_bob", "dev_bob", 1n, new Date(6))).toEqual({ seq: 1n, moved: true });
      expect(reader.prepare("SELECT seq, at FROM read_marks WHERE user_id = 'u_bob'").all()).toEqual([{ seq: 1, at: 5 }]);
      expect(reader.prepare("SELECT seq, at FROM delivery_cursors WHERE device_id = 'dev_bob'").all()).toEqual([{ seq: 1, at: 6 }]);
      // Nothing to deliver or read below 1.
      expect(await store.receipts.markDelivered("g_1", "u_bob", "dev_new", 0n, new Date(7))).toEqual({ seq: 0n, moved: false });
      expect(await store.receipts.markRead("g_1", "u_carol", 0n, new Date(7))).toEqual({ seq: 0n, moved: false });
      expect(reader.prepare("SELECT count(*) FROM delivery_cursors").pluck().get()).toBe(1);
    });

    it("upgrades a version 1 file in place: old conversations keep their data and start with no watermarks", async () => {
      const path = freshPath();
      const first = open(path);
      await first.close();
      const raw = new Database(path);
      // Roll the file back to what version 1 wrote, then fill it the way version 1 did.
      raw.exec("DROP TABLE read_marks; DROP TABLE delivery_cursors; ALTER TABLE messages DROP COLUMN attachments_json; PRAGMA user_version = 1;");
      raw.exec(`INSERT INTO conversations VALUES ('d_1', 'direct', '', 1000, 2);
        INSERT INTO members VALUES ('d_1', 'u_alice', 'member', 0, NULL, 1000), ('d_1', 'u_bob', 'member', 0, NULL, 1000);
        INSERT INTO messages VALUES ('d_1', 1, 'm_1', 'u_alice', 'dev', 'c_1', 'text', 'hi', 2000, NULL),
                                    ('d_1', 2, 'm_2', 'u_bob', 'dev', 'c_2', 'text', 'yo', 3000, NULL);`);
      raw.close();

      const store = track(open(path));
      expect(store.settings().schemaVersion).toBe(SCHEMA_VERSION);
      expect(await store.receipts.readSeq("d_1", "u_alice")).toBe(0n);
      expect(await store.conversations.listInbox("u_alice", { limit: 10 })).toEqual([
        {
          conversation: { conversationId: "d_1", kind: "direct", title: "", createdAt: new Date(1000), lastSeq: 2n },
          visibleLastSeq: 2n,
          readSeq: 0n,
          lastActivityAt: new Date(3000),
        },
      ]);
      expect((await store.messages.append(message("d_1"))).message.seq).toBe(3n);
      expect(await store.receipts.readSeq("d_1", "u_alice")).toBe(3n);
    });
  });

  describe("schema", () => {
    it("numbers the migrations 1, 2, 3, ...", () => {
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    });

    it("applies only the migrations a file has not seen, in order", async () => {
      const { path, store } = await storeWithConversation();
      await store.messages.append(message("d_1"));
      await store.close();

      const db = track(new Database(path));
      const applied: number[] = [];
      const next = [
        ...MIGRATIONS.map((m) => ({ ...m, up: (d: Database.Database) => (applied.push(m.version), m.up(d)) })),
        { version: MIGRATIONS.length + 1, description: "test", up: (d: Database.Database) => (applied.push(MIGRATIONS.length + 1), d.exec("CREATE TABLE extra (x)")) },
        { version: MIGRATIONS.length + 2, description: "test", up: (d: Database.Database) => (applied.push(MIGRATIONS.length + 2), d.exec("ALTER TABLE extra ADD COLUMN y")) },
      ];
      expect(migrate(db, next)).toBe(MIGRATIONS.length + 2);
      expect(applied).toEqual([MIGRATIONS.length + 1, MIGRATIONS.length + 2]);
      expect(db.prepare("SELECT count(*) FROM messages").pluck().get()).toBe(1);
      expect(migrate(db, next)).toBe(MIGRATIONS.length + 2);
      expect(applied).toHaveLength(2);
    });

    it("refuses migrations that are not numbered in order", () => {
      const db = track(new Database(":memory:"));
      expect(() => migrate(db, [{ version: 2, description: "x", up: () => undefined }])).toThrow(/versions must be 1, 2, 3/);
    });

    it("refuses to open a file written by a newer schema", async () => {
      const path = freshPath();
      await open(path).close();
      const raw = new Database(path);
      raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      raw.close();
      expect(() => open(path)).toThrow(/newer than this build/);
    });
  });

  describe("details", () => {
    it("reads nothing for limit 0 and refuses a negative or fractional limit", async () => {
      const { store } = await storeWithConversation();
      await store.messages.append(message("d_1"));
      expect(await store.messages.readRange("d_1", { limit: 0 })).toEqual([]);
      await expect(store.messages.readRange("d_1", { limit: -1 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.messages.readRange("d_1", { limit: 1.5 })).rejects.toBeInstanceOf(RangeError);
    });

    it("returns seqs beyond 2^53 exactly", async () => {
      const { path, store } = await storeWithConversation();
      const big = 2n ** 53n + 11n;
      const raw = track(new Database(path));
      raw.prepare("UPDATE conversations SET last_seq = ? WHERE conversation_id = 'd_1'").run(big);
      const { message: stored } = await store.messages.append(message("d_1"));
      expect(stored.seq).toBe(big + 1n);
      expect((await store.messages.readRange("d_1", { afterSeq: big, limit: 5 }))[0].seq).toBe(big + 1n);
      expect(await store.conversations.listHeads("u_alice")).toEqual([{ conversationId: "d_1", lastSeq: big + 1n }]);
    });

    it("rethrows a reused user id instead of reporting the username as taken", async () => {
      const store = track(open(freshPath()));
      const user = { userId: "u_1", username: "alice", displayName: "Alice", passwordHash: "h", createdAt: new Date(1) };
      expect(await store.accounts.createUser(user)).toBe(true);
      await expect(store.accounts.createUser({ ...user, username: "other" })).rejects.toMatchObject({ code: "SQLITE_CONSTRAINT_PRIMARYKEY" });
    });

    it("keeps the first revocation time", async () => {
      const store = track(open(freshPath()));
      await store.accounts.createUser({ userId: "u_1", username: "alice", displayName: "Alice", passwordHash: "h", createdAt: new Date(1) });
      await store.accounts.createDevice({
        deviceId: "dev_1",
        userId: "u_1",
        name: "phone",
        createdAt: new Date(2),
        refreshTokenHash: "h1",
        refreshExpiresAt: new Date(3),
      });
      await store.accounts.revokeDevice("dev_1", new Date(10));
      await store.accounts.revokeDevice("dev_1", new Date(20));
      expect((await store.accounts.getDevice("dev_1"))?.revokedAt).toEqual(new Date(10));
    });

    it("works in memory, for throwaway stores", async () => {
      const store = track(createSqliteStore({ path: ":memory:" }));
      await store.conversations.ensureDirectConversation("d_1", ["u_a", "u_b"], new Date(0));
      expect((await store.messages.append(message("d_1"))).message.seq).toBe(1n);
    });

    it("can be closed twice", async () => {
      const store = open(freshPath());
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
    });
  });
});
