import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { GroupRole } from "../gen/chat/v1/groups_pb.js";
import { MessageKind, SystemEventKind, type Message } from "../gen/chat/v1/types_pb.js";
import { SendRejectedError, type ChatClient, type DeviceStream } from "../clients/sdk/index.js";
import { expectChatError } from "./support/errors.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, otherDevice } from "./support/users.js";

const seqs = (messages: readonly Message[]) => messages.map((message) => Number(message.seq));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function newUsers(baseUrl: string, count: number, prefix: string): Promise<ChatClient[]> {
  const users: ChatClient[] = [];
  for (let start = 0; start < count; start += 50) {
    users.push(...(await Promise.all(range(start, Math.min(count, start + 50) - 1).map(() => newUser(baseUrl, prefix)))));
  }
  return users;
}

describe("groups", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ env: { CHAT_GROUP_MAX_MEMBERS: "500" } });
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("1. three members sending at once: every device of every member sees one order, no gap, no duplicate", async () => {
    const [owner, second, third] = await newUsers(server.url, 3, "trio");
    const devices: DeviceStream[] = [];
    for (const member of [owner!, second!, third!]) {
      const extra = await otherDevice(member);
      devices.push(member.openStream(), extra.openStream());
    }
    await Promise.all(devices.map((device) => device.ready));
    const { group } = await owner!.groups.createGroup({ name: "trio", memberUserIds: [second!.userId, third!.userId] });
    const to = { conversationId: group!.groupId };

    const perSender = 120;
    await Promise.all(
      [0, 2, 4].map(async (deviceIndex, sender) => {
        const stream = devices[deviceIndex]!;
        await Promise.all(range(1, perSender).map((i) => stream.send(to, `${sender}:${i}`)));
      }),
    );
    const total = 1 + 3 * perSender;
    const history = await owner!.allMessages(group!.groupId);
    expect(seqs(history)).toEqual(range(1, total));
    expect(history[0]!.kind).toBe(MessageKind.SYSTEM);
    expect(history[0]!.system?.kind).toBe(SystemEventKind.GROUP_CREATED);

    const received = await Promise.all(devices.map((device) => device.takeMessages(total)));
    for (const messages of received) expect(messages.map((message) => message.messageId)).toEqual(history.map((message) => message.messageId));
    for (const sender of [0, 1, 2]) {
      const own = history.filter((message) => message.text.startsWith(`${sender}:`)).map((message) => Number(message.text.split(":")[1]));
      expect(own).toEqual(range(1, perSender));
    }
    devices.forEach((device) => device.close());
  });

  it("2. a 500-member group (configured cap) delivers one send to every online member's device", async () => {
    const members = await newUsers(server.url, 500, "big");
    const [owner, ...rest] = members;
    const { group } = await owner!.groups.createGroup({ name: "five hundred", memberUserIds: rest.map((member) => member.userId) });
    expect(group!.members).toHaveLength(500);
    const streams = members.map((member) => member.openStream());
    await Promise.all(streams.map((stream) => stream.ready));
    const sent = await rest[7]!.send({ conversationId: group!.groupId }, "hello, everyone");
    const got = await Promise.all(streams.map((stream) => stream.takeMessages(1)));
    for (const [message] of got) expect(message!.messageId).toBe(sent.message!.messageId);

    // The 501st member does not fit, and nothing changes.
    const extra = await newUser(server.url, "extra");
    await expectChatError(owner!.groups.addMembers({ groupId: group!.groupId, userIds: [extra.userId] }), Code.FailedPrecondition, ErrorReason.GROUP_FULL);
    const after = await owner!.groups.getGroup({ groupId: group!.groupId });
    expect(after.group!.members).toHaveLength(500);
    expect(after.group!.conversation!.lastSeq).toBe(2n);
    streams.forEach((stream) => stream.close());
  }, 120_000);

  it("3. refuses a non-member's send, a send after removal, a non-admin's membership change, adding past the cap; nothing changes", async () => {
    const [owner, admin, member, outsider, newcomer] = await newUsers(server.url, 5, "rules");
    const { group } = await owner!.groups.createGroup({ name: "rules", memberUserIds: [admin!.userId, member!.userId] });
    const groupId = group!.groupId;
    await owner!.groups.setMemberRole({ groupId, userId: admin!.userId, role: GroupRole.ADMIN });
    await member!.send({ conversationId: groupId }, "before");
    const snapshot = async () => {
      const current = await owner!.groups.getGroup({ groupId });
      return { lastSeq: current.group!.conversation!.lastSeq, members: current.group!.members.map((m) => [m.userId, m.role]) };
    };
    const before = await snapshot();

    await expectChatError(outsider!.send({ conversationId: groupId }, "let me in"), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    await expectChatError(outsider!.history(groupId), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    await expectChatError(member!.groups.addMembers({ groupId, userIds: [newcomer!.userId] }), Code.PermissionDenied, ErrorReason.ROLE_REQUIRED);
    await expectChatError(member!.groups.removeMember({ groupId, userId: admin!.userId }), Code.PermissionDenied, ErrorReason.ROLE_REQUIRED);
    await expectChatError(member!.groups.renameGroup({ groupId, name: "mine now" }), Code.PermissionDenied, ErrorReason.ROLE_REQUIRED);
    await expectChatError(admin!.groups.removeMember({ groupId, userId: owner!.userId }), Code.PermissionDenied, ErrorReason.ROLE_REQUIRED);
    await expectChatError(admin!.groups.setMemberRole({ groupId, userId: member!.userId, role: GroupRole.ADMIN }), Code.PermissionDenied, ErrorReason.ROLE_REQUIRED);
    await expectChatError(outsider!.groups.addMembers({ groupId, userIds: [outsider!.userId] }), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    await expectChatError(owner!.groups.addMembers({ groupId, userIds: ["u_nobody"] }), Code.NotFound, ErrorReason.USER_NOT_FOUND);
    await expectChatError(owner!.groups.createGroup({ name: "", memberUserIds: [] }), Code.InvalidArgument, ErrorReason.INVALID_ARGUMENT);
    const crowd = Array.from({ length: 500 }, (_, i) => `u_${i}`);
    await expectChatError(owner!.groups.createGroup({ name: "too big", memberUserIds: crowd }), Code.FailedPrecondition, ErrorReason.GROUP_FULL);
    expect(await snapshot()).toEqual(before);

    // Removal takes effect at once: the removed member's stream gets the removal event, then nothing.
    const removedStream = member!.openStream();
    await removedStream.ready;
    const removal = await admin!.groups.removeMember({ groupId, userId: member!.userId });
    expect(removal.group!.members.map((m) => m.userId)).not.toContain(member!.userId);
    const [removedEvent] = await removedStream.takeMessages(1);
    expect(removedEvent!.system?.kind).toBe(SystemEventKind.MEMBER_REMOVED);
    const rejected = await removedStream.send({ conversationId: groupId }, "still here?").catch((error: SendRejectedError) => error);
    expect((rejected as SendRejectedError).status).toMatchObject({ code: Code.PermissionDenied, reason: ErrorReason.NOT_A_MEMBER });
    await expectChatError(member!.send({ conversationId: groupId }, "still here?"), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    await owner!.send({ conversationId: groupId }, "after the removal");
    await expect(removedStream.takeMessages(1, 500)).rejects.toThrow(/timed out/);

    // The removed member keeps the history up to and including the removal, and no further.
    const kept = await member!.allMessages(groupId);
    expect(kept.map((message) => message.text)).toContain("before");
    expect(kept[kept.length - 1]!.seq).toBe(removedEvent!.seq);
    const full = await owner!.allMessages(groupId);
    expect(full[full.length - 1]!.text).toBe("after the removal");
    removedStream.close();
  });

  it("writes membership changes into the conversation as system events with their own seq, and lists my groups", async () => {
    const [owner, friend, later] = await newUsers(server.url, 3, "events");
    const { group } = await owner!.groups.createGroup({ name: "first name", memberUserIds: [friend!.userId] });
    const groupId = group!.groupId;
    await owner!.groups.renameGroup({ groupId, name: "second name" });
    await owner!.groups.addMembers({ groupId, userIds: [later!.userId] });
    await friend!.groups.leaveGroup({ groupId });
    const kinds = (await owner!.allMessages(groupId)).map((message) => [Number(message.seq), message.system?.kind]);
    expect(kinds).toEqual([
      [1, SystemEventKind.GROUP_CREATED],
      [2, SystemEventKind.GROUP_RENAMED],
      [3, SystemEventKind.MEMBERS_ADDED],
      [4, SystemEventKind.MEMBER_LEFT],
    ]);
    // A member added later sees the conversation from the event that added them.
    expect(seqs(await later!.allMessages(groupId))).toEqual([3, 4]);
    expect((await later!.groups.listMyGroups({})).groups.map((g) => g.name)).toEqual(["second name"]);
    expect((await friend!.groups.listMyGroups({})).groups).toEqual([]);
    // The owner leaving hands the group to the longest-standing member.
    await owner!.groups.leaveGroup({ groupId });
    const after = await later!.groups.getGroup({ groupId });
    expect(after.group!.members.map((m) => [m.userId, m.role])).toEqual([[later!.userId, GroupRole.OWNER]]);
  });
});
