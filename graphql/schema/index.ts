import type { GraphQLSchema } from "graphql";
import { createBuilder } from "../builder.js";
import { registerAccounts } from "./accounts.js";
import { registerGroups } from "./groups.js";
import { registerMessaging } from "./messaging.js";
import { registerPresence } from "./presence.js";
import { registerScalars } from "./scalars.js";
import { registerSync } from "./sync.js";
import { registerTyping } from "./typing.js";
import { registerSharedTypes } from "./types.js";

/** The whole schema; it depends on no setting, so `graphql/schema.graphql` is its one printed form. */
export function buildChatSchema(): GraphQLSchema {
  const builder = createBuilder();
  builder.queryType({ description: "Reads. Every field needs `Authorization: Bearer <accessToken>`." });
  builder.mutationType({ description: "Changes. All but signUp, logIn and refreshSession need `Authorization: Bearer <accessToken>`." });
  builder.subscriptionType({
    description:
      "Live events over WebSocket (graphql-ws protocol, `ws(s)://<host>/graphql`, access token in the connection parameter " +
      "`authorization: \"Bearer <token>\"`) or server-sent events. Each subscription counts as a connected device for presence.",
  });
  registerScalars(builder);
  const types = registerSharedTypes(builder);
  registerAccounts(builder, types);
  registerMessaging(builder, types);
  registerSync(builder, types);
  registerGroups(builder, types);
  registerTyping(builder);
  registerPresence(builder);
  return builder.toSchema();
}
