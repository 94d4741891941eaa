import { create } from "@bufbuild/protobuf";
import { TypingEventSchema, type TypingEvent } from "../../gen/chat/v1/messaging_pb.js";
import type { Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";

/** Typing indicators: the typing notifier, and the typing frames of a device session. */
export function registerTyping(builder: Builder): void {
  const typingEvent = builder.objectRef<TypingEvent>("TypingEvent").implement({
    fields: (t) => ({
      conversationId: t.exposeID("conversationId"),
      userId: t.exposeID("userId"),
      typing: t.exposeBoolean("typing", { description: "false: stopped typing." }),
      expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "Stop showing the indicator then unless it is refreshed." }),
    }),
  });

  builder.mutationField("setTyping", (t) =>
    t.field({
      type: "Boolean",
      description: "Tells the other members you are (or stopped) typing. Repeats within the throttle window are dropped; refresh before `expiresAt`.",
      args: { conversationId: t.arg.id({ required: true }), typing: t.arg.boolean({ required: false, defaultValue: true }) },
      resolve: async (_root, args, ctx) => {
        await ctx.services.typing.notify(await ctx.principal(), String(args.conversationId), args.typing ?? true);
        return true;
      },
    }),
  );

  builder.subscriptionField("typing", (t) =>
    t.field({
      type: typingEvent,
      description: "Other members typing in a conversation you can read.",
      args: { conversationId: t.arg.id({ required: true }) },
      subscribe: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        const conversationId = String(args.conversationId);
        // The same access rule as reading the conversation's history.
        await ctx.services.messaging.visibleRange(conversationId, principal.userId);
        return openFeed(ctx.services, principal, {}, (frame) =>
          frame.case === "typing" && frame.value.conversationId === conversationId ? create(TypingEventSchema, frame.value) : undefined,
        );
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );
}
