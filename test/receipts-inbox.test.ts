import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { ReceiptKind, type Receipt } from "../gen/chat/v1/messaging_pb.js";
import type { ChatClient, DeviceStream } from "../clients/sdk/index.js";
import { expectChatError } from "./support/errors.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, otherDevice } from "./support/users.js";

describe("receipts, unread counts and the inbox", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  /** The next receipt matching `expected`; earlier ones (such as a device's echo of its own read) are skipped. */
  async function receiptLike(stream: DeviceStream, expected: Partial<Receipt>): Promise<Receipt> {
    for (;;) {
      const { receipt } = await stream.next("receipt");
      if (Object.entries(expected).every(([key, value]) => receipt[key as keyof Receipt] === value)) return receipt;
    }
  }

  const inboxEntry = async (client: ChatClient, conversationId: string) =>
    (await client.sync.getInbox({})).entries.find((entry) => entry.conversation!.conversationId === conversationId);

  /** The definition of an exact unread count: the messages after the read watermark, counted in the history. */
  async function countedUnread(client: ChatClient, conversationId: string): Promise<bigint> {
    const entry = (await inboxEntry(client, conversationId))!;
    const after = await client.allMessages(conversationId);
    return BigInt(after.filter((message) => message.seq > entry.readSeq).length);
  }

  it("4. keeps receipts and unread counts exact across devices and reconnects", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const bob2 = await otherDevice(bob);
    const aliceStream = alice.openStream();
    const phone = bob.openStream();
    const laptop = bob2.openStream();
    await Promise.all([aliceStream.ready, phone.ready, laptop.ready]);

    for (let i = 1; i <= 5; i++) await aliceStream.send({ recipientUserId: bob.userId }, `hi ${i}`);
    const conversationId = (await alice.openDirect(bob.userId)).conversationId;
    await phone.takeMessages(5);
    await laptop.takeMessages(5);
    expect((await inboxEntry(bob, conversationId))!.unreadCount).toBe(5n);
    expect((await inboxEntry(alice, conversationId))!.unreadCount).toBe(0n);

    // The phone delivers and reads up to 3: Alice hears both; the laptop's read state follows.
    phone.markDelivered(conversationId, 5n);
    const delivered = await aliceStream.next("receipt");
    expect(delivered.receipt).toMatchObject({ kind: ReceiptKind.DELIVERED, userId: bob.userId, deviceId: bob.deviceId, seq: 5n });
    phone.markRead(conversationId, 3n);
    const read = await aliceStream.next("receipt");
    expect(read.receipt).toMatchObject({ kind: ReceiptKind.READ, userId: bob.userId, seq: 3n });
    const synced = await laptop.next("receipt");
    expect(synced.receipt).toMatchObject({ kind: ReceiptKind.READ, userId: bob.userId, seq: 3n });
    expect((await inboxEntry(bob2, conversationId))!.unreadCount).toBe(2n);
    expect(await countedUnread(bob2, conversationId)).toBe(2n);

    // A watermark never moves back.
    expect((await bob2.sync.markRead({ conversationId, seq: 2n })).readSeq).toBe(3n);
    expect((await inboxEntry(bob, conversationId))!.readSeq).toBe(3n);

    // The laptop goes away; three more arrive; it comes back from its cursor.
    const cursor = new Map(laptop.cursors);
    laptop.close();
    for (let i = 6; i <= 8; i++) await aliceStream.send({ conversationId }, `hi ${i}`);
    const back = bob2.openStream({ resumeFrom: cursor });
    expect((await back.takeMessages(3)).map((message) => Number(message.seq))).toEqual([6, 7, 8]);
    expect((await inboxEntry(bob2, conversationId))!.unreadCount).toBe(5n);
    expect(await countedUnread(bob2, conversationId)).toBe(5n);

    back.markRead(conversationId, 8n);
    await receiptLike(aliceStream, { kind: ReceiptKind.READ, userId: bob.userId, seq: 8n });
    await receiptLike(phone, { kind: ReceiptKind.READ, userId: bob.userId, seq: 8n });
    expect((await inboxEntry(bob, conversationId))!.unreadCount).toBe(0n);

    // Reading past the end, or a conversation that is not yours, is refused and changes nothing.
    await expectChatError(bob.sync.markRead({ conversationId, seq: 99n }), Code.InvalidArgument, ErrorReason.INVALID_CURSOR);
    const mallory = await newUser(server.url, "mallory");
    await expectChatError(mallory.sync.markRead({ conversationId, seq: 1n }), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    expect((await inboxEntry(bob, conversationId))!.readSeq).toBe(8n);
    [aliceStream, phone, back].forEach((stream) => stream.close());
  });

  it("tells who read a group message, and when", async () => {
    const [owner, b, c] = await Promise.all([newUser(server.url, "own"), newUser(server.url, "bee"), newUser(server.url, "sea")]);
    const { group } = await owner.groups.createGroup({ name: "readers", memberUserIds: [b.userId, c.userId] });
    const groupId = group!.groupId;
    const sent = await owner.send({ conversationId: groupId }, "read me");
    const seq = sent.message!.seq;
    expect((await owner.sync.getMessageReaders({ conversationId: groupId, seq })).readers).toEqual([]);
    await b.sync.markRead({ conversationId: groupId, seq });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await c.send({ conversationId: groupId }, "replying reads everything before");
    const readers = (await owner.sync.getMessageReaders({ conversationId: groupId, seq })).readers;
    expect(readers.map((reader) => reader.userId).sort()).toEqual([b.userId, c.userId].sort());
    const at = new Map(readers.map((reader) => [reader.userId, timestampDate(reader.readAt!).getTime()]));
    expect(at.get(b.userId)!).toBeLessThan(at.get(c.userId)!);
    // The sender is not a reader of their own message, nor is a member added after it.
    expect(readers.map((reader) => reader.userId)).not.toContain(owner.userId);
    const latecomer = await newUser(server.url, "late");
    await owner.groups.addMembers({ groupId, userIds: [latecomer.userId] });
    const again = (await owner.sync.getMessageReaders({ conversationId: groupId, seq })).readers.map((reader) => reader.userId);
    expect(again.sort()).toEqual([b.userId, c.userId].sort());
  });

  it("orders the inbox by last activity, with a preview and a page token", async () => {
    const me = await newUser(server.url, "me");
    const friends = await Promise.all([1, 2, 3].map(() => newUser(server.url, "friend")));
    for (const friend of friends) await friend.send({ recipientUserId: me.userId }, `from ${friend.session.user!.username} `.padEnd(400, "x"));
    await friends[0]!.send({ recipientUserId: me.userId }, "latest");
    const first = await me.sync.getInbox({ limit: 2 });
    const second = await me.sync.getInbox({ limit: 2, pageToken: first.nextPageToken });
    const entries = [...first.entries, ...second.entries];
    expect(second.nextPageToken).toBe("");
    expect(entries.map((entry) => entry.lastMessage!.senderUserId)).toEqual([friends[0]!.userId, friends[2]!.userId, friends[1]!.userId]);
    expect(entries.map((entry) => entry.unreadCount)).toEqual([2n, 1n, 1n]);
    expect(entries[0]!.lastMessage!.text).toBe("latest");
    expect(entries[1]!.lastMessage!.text).toHaveLength(300);
    await expectChatError(me.sync.getInbox({ pageToken: "garbage" }), Code.InvalidArgument, ErrorReason.INVALID_CURSOR);
    await expectChatError(me.sync.getInbox({ limit: 201 }), Code.InvalidArgument, ErrorReason.PAGE_SIZE_TOO_LARGE);
  });
});
