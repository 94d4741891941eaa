import { create } from "@bufbuild/protobuf";
import { GroupRole, GroupSchema, type Group, type GroupMember } from "../../gen/chat/v1/groups_pb.js";
import type { GroupView } from "../../services/groups/index.js";
import { listSize, type Builder } from "../builder.js";
import { protoEnum, toConversation, type SharedTypes } from "./types.js";

const toGroup = (view: GroupView): Group => create(GroupSchema, view);

/** Groups, members and roles: GroupsService. */
export function registerGroups(builder: Builder, types: SharedTypes): void {
  const role = protoEnum<GroupRole>(builder, "GroupRole", GroupRole, "A member's rights in a group.", {
    MEMBER: "Reads and writes.",
    ADMIN: "Also adds and removes members, renames the group.",
    OWNER: "Also sets roles. A group always has one owner while it has members.",
  });

  const member = builder.objectRef<GroupMember>("GroupMember").implement({
    fields: (t) => ({
      userId: t.exposeID("userId"),
      role: t.expose("role", { type: role }),
      joinedAt: t.expose("joinedAt", { type: "DateTime", nullable: true }),
      joinedSeq: t.expose("joinedSeq", { type: "UInt64", description: "The seq of the event that added the member: their history starts there." }),
    }),
  });

  const group = builder.objectRef<Group>("Group").implement({
    description: "A group: its conversation, its current members and their roles.",
    fields: (t) => ({
      id: t.exposeID("groupId", { description: "Also the id of its conversation." }),
      name: t.exposeString("name"),
      members: t.field({
        type: [member],
        description: "Current members, oldest first.",
        extensions: listSize({ defaultSize: 100, maxSize: 100_000 }),
        resolve: (g) => g.members,
      }),
      conversation: t.field({ type: types.conversation, resolve: (g) => toConversation(g.conversation ?? {}) }),
    }),
  });

  builder.queryField("group", (t) =>
    t.field({
      type: group,
      description: "A group you are a member of.",
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => toGroup(await ctx.services.groups.getGroup(await ctx.principal(), String(args.id))),
    }),
  );

  builder.queryField("myGroups", (t) =>
    t.field({
      type: [group],
      description: "The groups you are a member of.",
      extensions: listSize({ defaultSize: 50, maxSize: 10_000 }),
      resolve: async (_root, _args, ctx) => (await ctx.services.groups.listMyGroups(await ctx.principal())).map(toGroup),
    }),
  );

  builder.mutationField("createGroup", (t) =>
    t.field({
      type: group,
      description: "Creates a group with you as its owner and the others as members.",
      args: {
        name: t.arg.string({ required: true, description: "1-100 characters." }),
        memberUserIds: t.arg.idList({ required: false }),
      },
      resolve: async (_root, args, ctx) =>
        toGroup(await ctx.services.groups.createGroup(await ctx.principal(), { name: args.name, memberUserIds: (args.memberUserIds ?? []).map(String) })),
    }),
  );

  builder.mutationField("addGroupMembers", (t) =>
    t.field({
      type: group,
      description: "Adds members (admin or owner only). They see the group's history from the event that added them.",
      args: { groupId: t.arg.id({ required: true }), userIds: t.arg.idList({ required: true }) },
      resolve: async (_root, args, ctx) => toGroup(await ctx.services.groups.addMembers(await ctx.principal(), String(args.groupId), args.userIds.map(String))),
    }),
  );

  builder.mutationField("removeGroupMember", (t) =>
    t.field({
      type: group,
      description: "Removes a member of a lower role (admin or owner only). Their history ends at the removal.",
      args: { groupId: t.arg.id({ required: true }), userId: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => toGroup(await ctx.services.groups.removeMember(await ctx.principal(), String(args.groupId), String(args.userId))),
    }),
  );

  builder.mutationField("leaveGroup", (t) =>
    t.field({
      type: "Boolean",
      description: "Leaves a group. An owner who leaves hands the group to the longest-standing admin (else member).",
      args: { groupId: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => {
        await ctx.services.groups.leaveGroup(await ctx.principal(), String(args.groupId));
        return true;
      },
    }),
  );

  builder.mutationField("renameGroup", (t) =>
    t.field({
      type: group,
      description: "Renames a group (admin or owner only).",
      args: { groupId: t.arg.id({ required: true }), name: t.arg.string({ required: true }) },
      resolve: async (_root, args, ctx) => toGroup(await ctx.services.groups.renameGroup(await ctx.principal(), String(args.groupId), args.name)),
    }),
  );

  builder.mutationField("setGroupMemberRole", (t) =>
    t.field({
      type: group,
      description: "Sets a member's role (owner only). Making someone OWNER makes you ADMIN.",
      args: { groupId: t.arg.id({ required: true }), userId: t.arg.id({ required: true }), role: t.arg({ type: role, required: true }) },
      resolve: async (_root, args, ctx) =>
        toGroup(await ctx.services.groups.setMemberRole(await ctx.principal(), String(args.groupId), String(args.userId), args.role)),
    }),
  );
}
