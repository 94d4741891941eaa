import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GroupRole, type GroupSchema } from "../../gen/chat/v1/groups_pb.js";
import { SystemEventKind } from "../../gen/chat/v1/types_pb.js";
import type { Principal } from "../accounts/index.js";
import { ChatError, ErrorReason, invalidArgument, notFound, permissionDenied, requireId } from "../errors.js";
import { newId } from "../lib/ids.js";
import { toConversationView } from "../messaging/conversation-view.js";
import {
  GroupFullError,
  type AccountStore,
  type ConversationRecord,
  type ConversationStore,
  type EventBus,
  type GroupRoleName,
  type MemberRecord,
  type MembershipChange,
  type NewMessage,
  type StoredMessage,
} from "../ports/index.js";

export type GroupView = MessageInitShape<typeof GroupSchema>;

export interface GroupsServiceOptions {
  readonly accounts: AccountStore;
  readonly conversations: ConversationStore;
  readonly bus: EventBus;
  /** Members per group, creator included. */
  readonly maxMembers: number;
  readonly now?: () => Date;
}

const MAX_NAME = 100;
const ROLE_VIEW: Record<GroupRoleName, GroupRole> = { owner: GroupRole.OWNER, admin: GroupRole.ADMIN, member: GroupRole.MEMBER };
const RANK: Record<GroupRoleName, number> = { member: 0, admin: 1, owner: 2 };

export type GroupsService = ReturnType<typeof createGroupsService>;

/**
 * Groups are conversations of kind "group". Every change of membership, name or role is written into
 * the conversation as a system event with its own seq, in the same transaction as the change, so all
 * members see changes and messages in one order, and a removed member's history ends exactly at the
 * event that removed them.
 */
export function createGroupsService(options: GroupsServiceOptions) {
  const { conversations, accounts, bus } = options;
  const now = options.now ?? (() => new Date());

  function checkName(raw: string): string {
    const name = raw.trim();
    if (name.length === 0 || name.length > MAX_NAME) {
      throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `a group name is 1-${MAX_NAME} characters`, "name", { max: String(MAX_NAME) });
    }
    return name;
  }

  const groupFull = (max: number) =>
    new ChatError("failed_precondition", ErrorReason.GROUP_FULL, `a group has at most ${max} members`, "user_ids", { max: String(max) });

  async function requireUsers(userIds: readonly string[]): Promise<void> {
    const found = new Set((await accounts.findUsersByIds(userIds)).map((user) => user.userId));
    const missing = userIds.filter((userId) => !found.has(userId));
    if (missing.length > 0) {
      throw notFound(ErrorReason.USER_NOT_FOUND, `no user has the id ${missing.map((id) => `"${id}"`).join(", ")}`, "user_ids");
    }
  }

  /** The caller's current membership of a group, at least `role`. */
  async function requireRole(principal: Principal, groupId: string, role: GroupRoleName): Promise<{ group: ConversationRecord; me: MemberRecord }> {
    const [group, me] = await Promise.all([conversations.getConversation(groupId), conversations.getMember(groupId, principal.userId)]);
    if (!group || !me || me.leftSeq !== undefined) {
      throw permissionDenied(ErrorReason.NOT_A_MEMBER, "you are not a member of this group (or it does not exist)", "group_id");
    }
    if (group.kind !== "group") {
      throw new ChatError("failed_precondition", ErrorReason.WRONG_CONVERSATION_KIND, "this is a direct conversation, not a group", "group_id");
    }
    if (RANK[me.role] < RANK[role]) {
      throw permissionDenied(ErrorReason.ROLE_REQUIRED, `this needs the ${role} role in the group; you are ${me.role}`);
    }
    return { group, me };
  }

  function systemEvent(principal: Principal, groupId: string, kind: SystemEventKind, text: string, targets: readonly string[] = [], title = ""): NewMessage {
    const at = now();
    return {
      messageId: newId("m", at.getTime()),
      conversationId: groupId,
      senderUserId: principal.userId,
      senderDeviceId: principal.deviceId,
      clientMsgId: newId("sys", at.getTime()),
      kind: "system",
      text,
      sentAt: at,
      systemJson: JSON.stringify({ kind, actorUserId: principal.userId, targetUserIds: targets, title }),
    };
  }

  async function apply(groupId: string, change: MembershipChange, event: NewMessage): Promise<StoredMessage> {
    try {
      return await conversations.changeMembership(groupId, change, event);
    } catch (error) {
      if (error instanceof GroupFullError) throw groupFull(error.maxMembers);
      throw error;
    }
  }

  /** Members after the change get the event; so do those it removed, as the last thing they see. */
  async function announce(groupId: string, event: StoredMessage, joined: readonly string[], left: readonly string[]): Promise<void> {
    const members = await conversations.listMemberIds(groupId);
    await bus.publish([...members, ...left], { kind: "message", message: event });
    const group = await conversations.getConversation(groupId);
    if (!group) return;
    if (joined.length > 0) await bus.publish(joined, { kind: "conversation", change: "joined", conversation: group });
    if (left.length > 0) await bus.publish(left, { kind: "conversation", change: "left", conversation: group });
  }

  async function view(group: ConversationRecord): Promise<GroupView> {
    const members = await conversations.listMembers(group.conversationId);
    return {
      groupId: group.conversationId,
      name: group.title,
      members: members.map((member) => ({
        userId: member.userId,
        role: ROLE_VIEW[member.role],
        joinedAt: timestampFromDate(member.joinedAt),
        joinedSeq: member.joinedSeq,
      })),
      conversation: toConversationView(group, []),
    };
  }

  async function current(groupId: string): Promise<GroupView> {
    return view((await conversations.getConversation(groupId))!);
  }

  return {
    async createGroup(principal: Principal, input: { name: string; memberUserIds: readonly string[] }): Promise<GroupView> {
      for (const userId of input.memberUserIds) requireId(userId, "member_user_ids");
      const name = checkName(input.name);
      const others = [...new Set(input.memberUserIds)].filter((userId) => userId !== principal.userId);
      if (others.length + 1 > options.maxMembers) throw groupFull(options.maxMembers);
      await requireUsers(others);
      const groupId = newId("g");
      const event = systemEvent(principal, groupId, SystemEventKind.GROUP_CREATED, `created the group "${name}"`, others, name);
      const { conversation, event: stored } = await conversations.createGroup(
        {
          conversationId: groupId,
          title: name,
          createdAt: event.sentAt,
          members: [{ userId: principal.userId, role: "owner" }, ...others.map((userId) => ({ userId, role: "member" as const }))],
        },
        event,
      );
      await bus.publish([principal.userId, ...others], { kind: "message", message: stored });
      await bus.publish([principal.userId, ...others], { kind: "conversation", change: "joined", conversation });
      return view(conversation);
    },

    async addMembers(principal: Principal, groupId: string, userIds: readonly string[]): Promise<GroupView> {
      requireId(groupId, "group_id");
      for (const userId of userIds) requireId(userId, "user_ids");
      await requireRole(principal, groupId, "admin");
      const present = new Set(await conversations.listMemberIds(groupId));
      const joining = [...new Set(userIds)].filter((userId) => !present.has(userId));
      if (userIds.length === 0) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "name at least one user to add", "user_ids");
      if (joining.length === 0) return current(groupId);
      if (present.size + joining.length > options.maxMembers) throw groupFull(options.maxMembers);
      await requireUsers(joining);
      const event = await apply(
        groupId,
        { add: joining.map((userId) => ({ userId, role: "member" as const })), maxMembers: options.maxMembers },
        systemEvent(principal, groupId, SystemEventKind.MEMBERS_ADDED, `added ${joining.length} member(s)`, joining),
      );
      await announce(groupId, event, joining, []);
      return current(groupId);
    },

    async removeMember(principal: Principal, groupId: string, userId: string): Promise<GroupView> {
      requireId(groupId, "group_id");
      requireId(userId, "user_id");
      const { me } = await requireRole(principal, groupId, "admin");
      if (userId === principal.userId) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "to remove yourself, leave the group", "user_id");
      }
      const target = await conversations.getMember(groupId, userId);
      if (!target || target.leftSeq !== undefined) throw notFound(ErrorReason.NOT_A_MEMBER, "that user is not a member of the group", "user_id");
      if (RANK[target.role] >= RANK[me.role]) {
        throw permissionDenied(ErrorReason.ROLE_REQUIRED, `a ${me.role} cannot remove a ${target.role}`, "user_id");
      }
      const event = await apply(groupId, { remove: [userId] }, systemEvent(principal, groupId, SystemEventKind.MEMBER_REMOVED, "removed a member", [userId]));
      await announce(groupId, event, [], [userId]);
      return current(groupId);
    },

    async leaveGroup(principal: Principal, groupId: string): Promise<void> {
      requireId(groupId, "group_id");
      const { me } = await requireRole(principal, groupId, "member");
      const change: { remove: string[]; roles?: { userId: string; role: GroupRoleName }[] } = { remove: [principal.userId] };
      if (me.role === "owner") {
        // A group always has an owner while it has members: the longest-standing admin, else member.
        const rest = (await conversations.listMembers(groupId)).filter((member) => member.userId !== principal.userId);
        const heir = rest.find((member) => member.role === "admin") ?? rest[0];
        if (heir) change.roles = [{ userId: heir.userId, role: "owner" }];
      }
      const event = await apply(groupId, change, systemEvent(principal, groupId, SystemEventKind.MEMBER_LEFT, "left the group", [principal.userId]));
      await announce(groupId, event, [], [principal.userId]);
    },

    async renameGroup(principal: Principal, groupId: string, rawName: string): Promise<GroupView> {
      requireId(groupId, "group_id");
      await requireRole(principal, groupId, "admin");
      const name = checkName(rawName);
      const event = await apply(groupId, { title: name }, systemEvent(principal, groupId, SystemEventKind.GROUP_RENAMED, `renamed the group to "${name}"`, [], name));
      await announce(groupId, event, [], []);
      const group = (await conversations.getConversation(groupId))!;
      await bus.publish(await conversations.listMemberIds(groupId), { kind: "conversation", change: "updated", conversation: group });
      return view(group);
    },

    async setMemberRole(principal: Principal, groupId: string, userId: string, role: GroupRole): Promise<GroupView> {
      requireId(groupId, "group_id");
      requireId(userId, "user_id");
      await requireRole(principal, groupId, "owner");
      const target = await conversations.getMember(groupId, userId);
      if (!target || target.leftSeq !== undefined) throw notFound(ErrorReason.NOT_A_MEMBER, "that user is not a member of the group", "user_id");
      if (userId === principal.userId) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "give the owner role to another member instead", "user_id");
      const roles: { userId: string; role: GroupRoleName }[] =
        role === GroupRole.OWNER
          ? [
              { userId, role: "owner" },
              { userId: principal.userId, role: "admin" },
            ]
          : role === GroupRole.ADMIN
            ? [{ userId, role: "admin" }]
            : role === GroupRole.MEMBER
              ? [{ userId, role: "member" }]
              : [];
      if (roles.length === 0) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "role must be MEMBER, ADMIN or OWNER", "role");
      const event = await apply(groupId, { roles }, systemEvent(principal, groupId, SystemEventKind.ROLE_CHANGED, "changed a role", [userId]));
      await announce(groupId, event, [], []);
      return current(groupId);
    },

    async getGroup(principal: Principal, groupId: string): Promise<GroupView> {
      requireId(groupId, "group_id");
      const { group } = await requireRole(principal, groupId, "member");
      return view(group);
    },

    async listMyGroups(principal: Principal): Promise<GroupView[]> {
      return Promise.all((await conversations.listGroups(principal.userId)).map(view));
    },
  };
}
