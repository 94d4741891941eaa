import { create } from "@bufbuild/protobuf";
import { PresenceEventSchema, PresenceStatus, type PresenceEvent } from "../../gen/chat/v1/messaging_pb.js";
import { checkPresenceUsers, MAX_PRESENCE_USERS } from "../../services/presence/index.js";
import { listSize, type Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import { protoEnum } from "./types.js";

/** Who is online: PresenceService for look-ups, a device session's presence watch for changes. */
export function registerPresence(builder: Builder): void {
  const status = protoEnum<PresenceStatus>(builder, "PresenceStatus", PresenceStatus, "Online while any device of the user is connected.", {
    ONLINE: "A device of the user is connected (it heartbeated within the presence timeout).",
    OFFLINE: "No device of the user is connected.",
  });

  const presence = builder.objectRef<PresenceEvent>("Presence").implement({
    description: "Whether a user is online.",
    fields: (t) => ({
      userId: t.exposeID("userId", { description: "The user." }),
      status: t.expose("status", { type: status, description: "Online or offline." }),
      lastSeen: t.expose("lastSeen", { type: "DateTime", nullable: true, description: "The last heartbeat of any of the user's devices; null if never seen." }),
    }),
  });

  builder.queryField("presence", (t) =>
    t.field({
      type: [presence],
      description: `Whether these users are online now (at most ${MAX_PRESENCE_USERS}).`,
      extensions: listSize({ countArguments: ["userIds"], defaultSize: 0, maxSize: MAX_PRESENCE_USERS }),
      args: { userIds: t.arg.idList({ required: true, description: "The users." }) },
      resolve: async (_root, args, ctx) => {
        await ctx.principal();
        return (await ctx.services.presence.getPresence(args.userIds.map(String))).map((view) => create(PresenceEventSchema, view));
      },
    }),
  );

  builder.subscriptionField("presence", (t) =>
    t.field({
      type: presence,
      description: `The current state of each watched user (at most ${MAX_PRESENCE_USERS}), then every change. Watch only the users on screen.`,
      args: { userIds: t.arg.idList({ required: true, description: "The users." }) },
      subscribe: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        const userIds = checkPresenceUsers(args.userIds.map(String), "userIds");
        return openFeed(ctx.services, principal, { watchPresence: userIds }, (frame) =>
          frame.case === "presence" ? create(PresenceEventSchema, frame.value) : undefined,
        );
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );
}
