import { create } from "@bufbuild/protobuf";
import { GroupRole, GroupSchema, type Group, type GroupMember } from "../../gen/chat/v1/groups_pb.js";
import type { GroupView } from "../../services/groups/index.js";
import { listSize, type Builder } from "../builder.js";
import { connectionType, sliceList } from "./connections.js";
import { toGlobalId } from "./node.js";
import { attempt, type Outcome } from "./payloads.js";
import { protoEnum, toConversation, type SharedTypes } from "./types.js";

const toGroup = (view: GroupView): Group => create(GroupSchema, view);

/** Groups are read whole by the service; pages are cut here. */
/** Defaults small enough that `myGroups { nodes { members { nodes { ... } } } }` stays well within the cost limit. */
const DEFAULT_MEMBERS_PAGE = 50;
const DEFAULT_GROUPS_PAGE = 20;
const MAX_MEMBERS_PAGE = 1_000;
const MAX_GROUPS_PAGE = 200;

/** Groups, members and roles: GroupsService. */
export function registerGroups(builder: Builder, types: SharedTypes): void {
  const role = protoEnum<GroupRole>(builder, "GroupRole", GroupRole, "A member's rights in a group.", {
    MEMBER: "Reads and writes.",
    ADMIN: "Also adds and removes members, renames the group.",
    OWNER: "Also sets roles. A group always has one owner while it has members.",
  });

  const member = builder.objectRef<GroupMember>("GroupMember").implement({
    description: "A current member of a group.",
    fields: (t) => ({
      userId: t.exposeID("userId", { description: "The member." }),
      role: t.expose("role", { type: role, description: "Their rights." }),
      joinedAt: t.expose("joinedAt", { type: "DateTime", nullable: true, description: "When they were added." }),
      joinedSeq: t.expose("joinedSeq", { type: "UInt64", description: "The seq of the event that added the member: their history starts there." }),
    }),
  });

  const members = connectionType(builder, types.pageInfo, "GroupMember", member, "A page of a group's current members, oldest first.", true);

  const group = builder.objectRef<Group>("Group").implement({
    description: "A group: its conversation, its current members and their roles.",
    interfaces: [types.node],
    isTypeOf: (value) => (value as { $typeName?: string }).$typeName === "chat.v1.Group",
    fields: (t) => ({
      id: t.id({ description: "The global id (Node).", resolve: (g) => toGlobalId("Group", g.groupId) }),
      groupId: t.exposeID("groupId", { description: "The id every `groupId` argument takes; also the `conversationId` of its conversation." }),
      name: t.exposeString("name", { description: "1-100 characters." }),
      members: t.field({
        type: members,
        description: `Current members, oldest first: \`first\` (default ${DEFAULT_MEMBERS_PAGE}, at most ${MAX_MEMBERS_PAGE}) after \`after\`, or \`last\` before \`before\`.`,
        extensions: listSize({ slicingArguments: ["first", "last"], defaultSize: DEFAULT_MEMBERS_PAGE, maxSize: MAX_MEMBERS_PAGE, sizedFields: ["edges", "nodes"] }),
        args: {
          first: t.arg.int({ required: false, description: "At most this many from the start (after `after`)." }),
          after: t.arg.string({ required: false, description: "An edge's cursor: the page starts after it." }),
          last: t.arg.int({ required: false, description: "At most this many from the end (before `before`)." }),
          before: t.arg.string({ required: false, description: "An edge's cursor: the page ends before it." }),
        },
        resolve: (g, args) => sliceList(g.members, args, DEFAULT_MEMBERS_PAGE, MAX_MEMBERS_PAGE),
      }),
      conversation: t.field({ type: types.conversation, description: "The group's conversation.", resolve: (g) => toConversation(g.conversation ?? {}) }),
    }),
  });

  builder.queryField("group", (t) =>
    t.field({
      type: group,
      nullable: true,
      description: "A group you are a member of; null (with an error at its path) if there is none you can see.",
      args: { groupId: t.arg.id({ required: true, description: "The group's id." }) },
      resolve: async (_root, args, ctx) => toGroup(await ctx.services.groups.getGroup(await ctx.principal(), String(args.groupId))),
    }),
  );

  const groups = connectionType(builder, types.pageInfo, "Group", group, "A page of your groups.", true);

  builder.queryField("myGroups", (t) =>
    t.field({
      type: groups,
      description: `The groups you are a member of: \`first\` (default ${DEFAULT_GROUPS_PAGE}, at most ${MAX_GROUPS_PAGE}) after \`after\`, or \`last\` before \`before\`.`,
      extensions: listSize({ slicingArguments: ["first", "last"], defaultSize: DEFAULT_GROUPS_PAGE, maxSize: MAX_GROUPS_PAGE, sizedFields: ["edges", "nodes"] }),
      args: {
        first: t.arg.int({ required: false, description: "At most this many from the start (after `after`)." }),
        after: t.arg.string({ required: false, description: "An edge's cursor: the page starts after it." }),
        last: t.arg.int({ required: false, description: "At most this many from the end (before `before`)." }),
        before: t.arg.string({ required: false, description: "An edge's cursor: the page ends before it." }),
      },
      resolve: async (_root, args, ctx) => sliceList((await ctx.services.groups.listMyGroups(await ctx.principal())).map(toGroup), args, DEFAULT_GROUPS_PAGE, MAX_GROUPS_PAGE),
    }),
  );

  const groupPayload = (name: string, description: string) =>
    builder.objectRef<Outcome<Group>>(name).implement({
      description,
      fields: (t) => ({
        group: t.field({ type: group, nullable: true, description: "The group as it is now; null when `userErrors` says why not.", resolve: (o) => o.value }),
        userErrors: t.field({ type: [types.userError], description: "Why it did not happen; empty on success.", resolve: (o) => [...o.userErrors] }),
      }),
    });

  const createInput = builder.inputType("CreateGroupInput", {
    description: "A new group.",
    fields: (t) => ({
      name: t.string({ required: true, description: "1-100 characters." }),
      memberUserIds: t.idList({ required: false, description: "The other first members (you are its owner)." }),
    }),
  });

  builder.mutationField("createGroup", (t) =>
    t.field({
      type: groupPayload("CreateGroupPayload", "The new group, or why it was not created."),
      description: "Creates a group with you as its owner and the others as members.",
      args: { input: t.arg({ type: createInput, required: true, description: "The group." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () =>
          toGroup(await ctx.services.groups.createGroup(await ctx.principal(), { name: input.name, memberUserIds: (input.memberUserIds ?? []).map(String) })),
        ),
    }),
  );

  const addInput = builder.inputType("AddGroupMembersInput", {
    description: "Users to add to a group.",
    fields: (t) => ({
      groupId: t.id({ required: true, description: "The group." }),
      userIds: t.idList({ required: true, description: "The users to add." }),
    }),
  });

  builder.mutationField("addGroupMembers", (t) =>
    t.field({
      type: groupPayload("AddGroupMembersPayload", "The group with its new members, or why not (ROLE_REQUIRED, GROUP_FULL, USER_NOT_FOUND)."),
      description: "Adds members (admin or owner only). They see the group's history from the event that added them.",
      args: { input: t.arg({ type: addInput, required: true, description: "The group and the users." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => toGroup(await ctx.services.groups.addMembers(await ctx.principal(), String(input.groupId), input.userIds.map(String)))),
    }),
  );

  const memberInput = (name: string, description: string) =>
    builder.inputType(name, {
      description,
      fields: (t) => ({
        groupId: t.id({ required: true, description: "The group." }),
        userId: t.id({ required: true, description: "The member." }),
      }),
    });

  builder.mutationField("removeGroupMember", (t) =>
    t.field({
      type: groupPayload("RemoveGroupMemberPayload", "The group without the member, or why not (ROLE_REQUIRED)."),
      description: "Removes a member of a lower role (admin or owner only). Their history ends at the removal.",
      args: { input: t.arg({ type: memberInput("RemoveGroupMemberInput", "The member to remove."), required: true, description: "The group and the member." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => toGroup(await ctx.services.groups.removeMember(await ctx.principal(), String(input.groupId), String(input.userId)))),
    }),
  );

  const leaveInput = builder.inputType("LeaveGroupInput", {
    description: "The group to leave.",
    fields: (t) => ({ groupId: t.id({ required: true, description: "The group." }) }),
  });

  const leavePayload = builder.objectRef<Outcome<string>>("LeaveGroupPayload").implement({
    description: "The group you left, or why not (NOT_A_MEMBER).",
    fields: (t) => ({
      groupId: t.id({ nullable: true, description: "The group you left.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Why it did not happen; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("leaveGroup", (t) =>
    t.field({
      type: leavePayload,
      description: "Leaves a group. An owner who leaves hands the group to the longest-standing admin (else member).",
      args: { input: t.arg({ type: leaveInput, required: true, description: "The group." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          await ctx.services.groups.leaveGroup(await ctx.principal(), String(input.groupId));
          return String(input.groupId);
        }),
    }),
  );

  const renameInput = builder.inputType("RenameGroupInput", {
    description: "A group's new name.",
    fields: (t) => ({
      groupId: t.id({ required: true, description: "The group." }),
      name: t.string({ required: true, description: "1-100 characters." }),
    }),
  });

  builder.mutationField("renameGroup", (t) =>
    t.field({
      type: groupPayload("RenameGroupPayload", "The renamed group, or why not."),
      description: "Renames a group (admin or owner only).",
      args: { input: t.arg({ type: renameInput, required: true, description: "The group and its name." }) },
      resolve: (_root, { input }, ctx) => attempt(async () => toGroup(await ctx.services.groups.renameGroup(await ctx.principal(), String(input.groupId), input.name))),
    }),
  );

  const roleInput = builder.inputType("SetGroupMemberRoleInput", {
    description: "A member's new role.",
    fields: (t) => ({
      groupId: t.id({ required: true, description: "The group." }),
      userId: t.id({ required: true, description: "The member." }),
      role: t.field({ type: role, required: true, description: "The new role." }),
    }),
  });

  builder.mutationField("setGroupMemberRole", (t) =>
    t.field({
      type: groupPayload("SetGroupMemberRolePayload", "The group with the new role, or why not (ROLE_REQUIRED)."),
      description: "Sets a member's role (owner only). Making someone OWNER makes you ADMIN.",
      args: { input: t.arg({ type: roleInput, required: true, description: "The group, the member and the role." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => toGroup(await ctx.services.groups.setMemberRole(await ctx.principal(), String(input.groupId), String(input.userId), input.role))),
    }),
  );
}
