import { create } from "@bufbuild/protobuf";
import { GroupSchema } from "../../gen/chat/v1/groups_pb.js";
import type { Builder } from "../builder.js";
import type { GraphQLContext } from "../context.js";
import { fromGlobalId, nodeNotFound, parseMessageKey } from "./node.js";
import { toConversation, toMessage, toUser, type SharedTypes } from "./types.js";

async function fetchNode(id: string, ctx: GraphQLContext): Promise<{ $typeName: string }> {
  const principal = await ctx.principal();
  const global = fromGlobalId(id);
  if (!global) throw nodeNotFound(id);
  switch (global.type) {
    case "User": {
      const [user] = await ctx.services.accounts.lookupUsers({ userIds: [global.key], usernames: [] });
      if (!user) throw nodeNotFound(id);
      return toUser(user);
    }
    case "Conversation":
      return toConversation(await ctx.services.messaging.getConversation(principal, global.key));
    case "Group":
      return create(GroupSchema, await ctx.services.groups.getGroup(principal, global.key));
    case "Message": {
      const key = parseMessageKey(global.key);
      if (!key) throw nodeNotFound(id);
      const page = await ctx.services.messaging.getHistory(principal, { conversationId: key.conversationId, afterSeq: key.seq - 1n, limit: 1 });
      const found = page.messages[0];
      if (!found || found.seq !== key.seq) throw nodeNotFound(id);
      return toMessage(found);
    }
  }
}

/** `node(id:)`: any object with a global id, fetched again (what Relay's refetching and normalized caches rely on). */
export function registerNode(builder: Builder, types: SharedTypes): void {
  builder.queryField("node", (t) =>
    t.field({
      type: types.node,
      nullable: true,
      description: "The object with this global id, if you can see it; null (with an error at its path) otherwise.",
      args: { id: t.arg.id({ required: true, description: "A global id (the `id` field of a Node)." }) },
      resolve: (_root, args, ctx) => fetchNode(String(args.id), ctx),
    }),
  );
}
