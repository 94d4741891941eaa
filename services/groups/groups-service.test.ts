import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryBus } from "../../backends/bus-memory/index.js";
import { createSqliteStore, type SqliteStore } from "../../backends/store-sqlite/index.js";
import { GroupRole } from "../../gen/chat/v1/groups_pb.js";
import { ErrorReason } from "../errors.js";
import { createGroupsService, type GroupsService } from "./groups-service.js";

const owner = { userId: "u_owner", deviceId: "dev_owner" };
const admin = { userId: "u_admin", deviceId: "dev_admin" };
const member = { userId: "u_member", deviceId: "dev_member" };
const outsider = { userId: "u_outsider", deviceId: "dev_outsider" };

describe("groups: who may change a group, and with what", () => {
  let store: SqliteStore;
  let groups: GroupsService;
  let groupId: string;
  /** The group's seqs so far: a refused change must not take one. */
  const lastSeq = async () => (await store.conversations.getConversation(groupId))!.lastSeq;

  beforeEach(async () => {
    store = createSqliteStore({ path: ":memory:" });
    for (const { userId } of [owner, admin, member, outsider]) {
      await store.accounts.createUser({ userId, username: userId.slice(2), displayName: userId, passwordHash: "scrypt$1$8$1$c2FsdA$a2V5", createdAt: new Date() });
    }
    groups = createGroupsService({ accounts: store.accounts, conversations: store.conversations, bus: createMemoryBus(), maxMembers: 10 });
    groupId = (await groups.createGroup(owner, { name: "team", memberUserIds: [admin.userId, member.userId] })).groupId!;
    await groups.setMemberRole(owner, groupId, admin.userId, GroupRole.ADMIN);
  });
  afterEach(async () => {
    await store.close();
  });

  it("lets an admin remove a member, not the owner; a member removes nobody", async () => {
    const before = await lastSeq();
    await expect(groups.removeMember(admin, groupId, owner.userId)).rejects.toMatchObject({ code: "permission_denied", reason: ErrorReason.ROLE_REQUIRED });
    await expect(groups.removeMember(member, groupId, admin.userId)).rejects.toMatchObject({ code: "permission_denied", reason: ErrorReason.ROLE_REQUIRED });
    expect(await lastSeq()).toBe(before);
    await groups.removeMember(admin, groupId, member.userId);
    expect(await store.conversations.listMemberIds(groupId)).toEqual([admin.userId, owner.userId].sort());
  });

  it("refuses every change by a removed member, storing nothing", async () => {
    await groups.removeMember(owner, groupId, admin.userId);
    const before = await lastSeq();
    await expect(groups.addMembers(admin, groupId, [outsider.userId])).rejects.toMatchObject({ reason: ErrorReason.NOT_A_MEMBER });
    await expect(groups.renameGroup(admin, groupId, "taken over")).rejects.toMatchObject({ reason: ErrorReason.NOT_A_MEMBER });
    await expect(groups.removeMember(admin, groupId, member.userId)).rejects.toMatchObject({ reason: ErrorReason.NOT_A_MEMBER });
    expect(await lastSeq()).toBe(before);
    expect((await store.conversations.getConversation(groupId))!.title).toBe("team");
  });

  it("refuses a blank or overlong name and an unknown user, storing nothing", async () => {
    const before = await lastSeq();
    for (const name of ["", "   ", "x".repeat(101)]) {
      await expect(groups.renameGroup(owner, groupId, name)).rejects.toMatchObject({ code: "invalid_argument", field: "name" });
      await expect(groups.createGroup(owner, { name, memberUserIds: [] })).rejects.toMatchObject({ code: "invalid_argument", field: "name" });
    }
    await expect(groups.addMembers(owner, groupId, ["u_nobody"])).rejects.toMatchObject({ code: "not_found", reason: ErrorReason.USER_NOT_FOUND });
    expect(await lastSeq()).toBe(before);
    expect(await store.conversations.listMemberIds(groupId)).not.toContain("u_nobody");
  });
});
