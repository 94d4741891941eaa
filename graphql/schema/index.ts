import type { GraphQLSchema } from "graphql";
import { createBuilder } from "../builder.js";
import { registerAccounts } from "./accounts.js";
import { registerAttachments } from "./attachments.js";
import { registerGroups } from "./groups.js";
import { registerMessaging } from "./messaging.js";
import { registerNode } from "./node-query.js";
import { registerPresence } from "./presence.js";
import { registerPush } from "./push.js";
import { registerScalars } from "./scalars.js";
import { registerSync } from "./sync.js";
import { registerTyping } from "./typing.js";
import { registerSharedTypes } from "./types.js";

/** The whole schema; it depends on no setting, so `graphql/schema.graphql` is its one printed form. */
export function buildChatSchema(): GraphQLSchema {
  const builder = createBuilder();
  builder.queryType({ description: "Reads. Every field needs `Authorization: Bearer <accessToken>`." });
  builder.mutationType({
    description:
      "Changes. All but signUp, logIn and refreshSession need `Authorization: Bearer <accessToken>`. Each takes one `input` and " +
      "returns a payload whose `userErrors` list the expected failures (bad input, a target not found or not yours).",
  });
  builder.subscriptionType({
    description:
      "Live events over WebSocket (graphql-ws protocol, `ws(s)://<host>/graphql`, access token in the connection parameter " +
      "`authorization: \"Bearer <token>\"`) or server-sent events. Each subscription counts as a connected device for presence.",
  });
  registerScalars(builder);
  const types = registerSharedTypes(builder);
  registerNode(builder, types);
  registerAccounts(builder, types);
  registerMessaging(builder, types);
  registerSync(builder, types);
  registerGroups(builder, types);
  registerAttachments(builder, types);
  registerPush(builder, types);
  registerTyping(builder, types);
  registerPresence(builder);
  return builder.toSchema();
}
