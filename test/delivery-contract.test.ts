import Database from "better-sqlite3";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Message } from "../gen/chat/v1/types_pb.js";
import type { ChatClient } from "../clients/sdk/index.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, otherDevice } from "./support/users.js";
import { takeUntil } from "./support/wait.js";

/** The delivery contract (docs/delivery-contract.md), items 1-4, for 1:1 chat, over real sockets. */
describe("delivery contract, 1:1", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  const seqs = (messages: readonly Message[]) => messages.map((message) => Number(message.seq));
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("1. acknowledges a send only once the message is in the SQLite file", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const stream = alice.openStream();
    await stream.ready;
    const db = new Database(server.dbPath, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT seq, text FROM messages WHERE message_id = ?");
      for (let i = 0; i < 40; i++) {
        const ack = await stream.send({ recipientUserId: bob.userId }, `durable ${i}`);
        // Read by another process's connection the moment the ack arrives: it must already be committed.
        const stored = row.get(ack.message!.messageId) as { seq: bigint | number; text: string } | undefined;
        expect(stored, `message ${i} acknowledged but not in the file`).toBeDefined();
        expect(BigInt(stored!.seq)).toBe(ack.message!.seq);
        expect(stored!.text).toBe(`durable ${i}`);
      }
    } finally {
      db.close();
      stream.close();
    }
  });

  it("2. gives every message of a conversation a gapless seq and every device the same order", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const [alice2, bob2] = await Promise.all([otherDevice(alice), otherDevice(bob)]);
    const conversation = await alice.openDirect(bob.userId);
    const devices = [alice, alice2, bob, bob2].map((client) => client.openStream());
    await Promise.all(devices.map((device) => device.ready));

    const perSender = 150;
    const senders: [ChatClient, number][] = [
      [alice, 0],
      [bob, 1],
    ];
    await Promise.all(
      senders.map(async ([, index]) => {
        const stream = devices[index * 2]!;
        await Promise.all(range(1, perSender).map((i) => stream.send({ conversationId: conversation.conversationId }, `from ${index}: ${i}`)));
      }),
    );
    const total = perSender * senders.length;
    const history = await alice.allMessages(conversation.conversationId);
    expect(seqs(history)).toEqual(range(1, total));

    const received = await Promise.all(devices.map((device) => device.takeMessages(total)));
    for (const messages of received) {
      expect(seqs(messages)).toEqual(range(1, total));
      expect(messages.map((message) => message.messageId)).toEqual(history.map((message) => message.messageId));
    }
    // Each sender's own messages keep the order they were sent in.
    for (const [, index] of senders) {
      const own = history.filter((message) => message.text.startsWith(`from ${index}:`)).map((message) => Number(message.text.split(": ")[1]));
      expect(own).toEqual(range(1, perSender));
    }
    devices.forEach((device) => device.close());
  });

  it("2b. pushes a user's own sends to the user's other devices", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const alice2 = await otherDevice(alice);
    const second = alice2.openStream();
    await second.ready;
    const ack = await alice.send({ recipientUserId: bob.userId }, "from my laptop");
    const [echo] = await second.takeMessages(1);
    expect(echo!.messageId).toBe(ack.message!.messageId);
    expect(echo!.senderDeviceId).toBe(alice.deviceId);
    second.close();
  });

  it("3. returns the original message for a retried client_msg_id and stores one copy", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const stream = alice.openStream();
    await stream.ready;
    const conversation = await alice.openDirect(bob.userId);
    const to = { conversationId: conversation.conversationId };

    const key = randomUUID();
    const first = await stream.send(to, "only once", key);
    expect(first.duplicate).toBe(false);
    const again = await stream.send(to, "only once", key);
    const overUnary = await alice.send(to, "only once", key);
    for (const retry of [again, overUnary]) {
      expect(retry.duplicate).toBe(true);
      expect(retry.message!.messageId).toBe(first.message!.messageId);
      expect(retry.message!.seq).toBe(first.message!.seq);
    }

    // Retries racing each other, as after a reconnect with the outbox still full.
    const racing = randomUUID();
    const results = await Promise.all(range(1, 8).map(() => alice.send(to, "raced", racing)));
    expect(new Set(results.map((result) => result.message!.messageId)).size).toBe(1);
    expect(results.filter((result) => !result.duplicate)).toHaveLength(1);

    const history = await alice.allMessages(conversation.conversationId);
    expect(history.map((message) => message.text)).toEqual(["only once", "raced"]);
    expect(seqs(history)).toEqual([1, 2]);
    stream.close();
  });

  it("4. resumes a device that missed 1,000 messages with exactly those, in order, then live with no gap", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const to = { conversationId: conversation.conversationId };
    const sender = alice.openStream();
    await sender.ready;

    // Bob is online for the first 5 messages, then his device goes away with its cursor.
    const bobOnline = bob.openStream();
    await bobOnline.ready;
    for (let i = 1; i <= 5; i++) await sender.send(to, `before ${i}`);
    expect(seqs(await bobOnline.takeMessages(5))).toEqual(range(1, 5));
    const cursor = new Map(bobOnline.cursors);
    bobOnline.close();
    expect(cursor.get(conversation.conversationId)).toBe(5n);

    for (let start = 1; start <= 1000; start += 100) {
      await Promise.all(range(start, start + 99).map((i) => sender.send(to, `missed ${i}`)));
    }

    // Bob comes back while Alice keeps sending: catch-up and live traffic overlap.
    const liveSends = (async () => {
      for (let i = 1; i <= 200; i++) await sender.send(to, `live ${i}`);
    })();
    const bobBack = bob.openStream({ resumeFrom: cursor });
    let messages = 0;
    const arrived = await takeUntil(bobBack, (event) => event.kind === "message" && ++messages === 1200, {
      what: "1,200 messages on Bob's resumed stream (1,000 missed, 200 live)",
      timeoutMs: 30_000,
      show: (event) => (event.kind === "message" ? `seq ${event.message.seq} "${event.message.text}"` : event.kind),
    });
    const events: string[] = [];
    const received: Message[] = [];
    for (const event of arrived) {
      if (event.kind === "caught-up") events.push(`caught-up after ${received.length}`);
      if (event.kind === "message") received.push(event.message);
    }
    await liveSends;
    expect(seqs(received)).toEqual(range(6, 1205));
    expect(received.slice(0, 1000).map((message) => message.text)).toEqual(range(1, 1000).map((i) => `missed ${i}`));
    expect(received.slice(1000).map((message) => message.text).sort()).toEqual(range(1, 200).map((i) => `live ${i}`).sort());
    expect(events).toHaveLength(1);
    expect(Number(events[0]!.split(" ").pop())).toBeGreaterThanOrEqual(1000);

    // Nothing more arrives than was sent: one more message is the next seq, not a repeat.
    await sender.send(to, "after");
    const [next] = await bobBack.takeMessages(1);
    expect(next!.seq).toBe(1206n);
    bobBack.close();
    sender.close();
  });

  it("4b. sends a resuming device the conversations it has no cursor for from their first message", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const carol = await newUser(server.url, "carol");
    const bobStream = bob.openStream();
    await bobStream.ready;
    const cursor = new Map(bobStream.cursors);
    bobStream.close();

    await alice.send({ recipientUserId: bob.userId }, "new conversation 1");
    await carol.send({ recipientUserId: bob.userId }, "new conversation 2");
    const back = bob.openStream({ resumeFrom: cursor });
    const messages = await back.takeMessages(2);
    expect(messages.map((message) => message.text).sort()).toEqual(["new conversation 1", "new conversation 2"]);
    expect(messages.every((message) => message.seq === 1n)).toBe(true);
    back.close();
  });
});
