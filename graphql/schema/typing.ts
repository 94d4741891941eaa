import { create } from "@bufbuild/protobuf";
import { TypingEventSchema, type TypingEvent } from "../../gen/chat/v1/messaging_pb.js";
import type { Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import { attempt, type Outcome } from "./payloads.js";
import type { SharedTypes } from "./types.js";

/** Typing indicators: the typing notifier, and the typing frames of a device session. */
export function registerTyping(builder: Builder, types: SharedTypes): void {
  const typingEvent = builder.objectRef<TypingEvent>("TypingEvent").implement({
    description: "A member started or stopped typing.",
    fields: (t) => ({
      conversationId: t.exposeID("conversationId", { description: "The conversation." }),
      userId: t.exposeID("userId", { description: "The member typing." }),
      typing: t.exposeBoolean("typing", { description: "false: stopped typing." }),
      expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true, description: "Stop showing the indicator then unless it is refreshed." }),
    }),
  });

  const input = builder.inputType("SetTypingInput", {
    description: "Whether you are typing in a conversation.",
    fields: (t) => ({
      conversationId: t.id({ required: true, description: "The conversation." }),
      typing: t.boolean({ required: false, defaultValue: true, description: "false: you stopped." }),
    }),
  });

  const payload = builder.objectRef<Outcome<string>>("SetTypingPayload").implement({
    description: "The conversation told, or why not (NOT_A_MEMBER).",
    fields: (t) => ({
      conversationId: t.id({ nullable: true, description: "The conversation.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("setTyping", (t) =>
    t.field({
      type: payload,
      description: "Tells the other members you are (or stopped) typing. Repeats within the throttle window are dropped; refresh before `expiresAt`.",
      args: { input: t.arg({ type: input, required: true, description: "The conversation." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          await ctx.services.typing.notify(await ctx.principal(), String(input.conversationId), input.typing ?? true);
          return String(input.conversationId);
        }),
    }),
  );

  builder.subscriptionField("typing", (t) =>
    t.field({
      type: typingEvent,
      description: "Other members typing in a conversation you can read.",
      args: { conversationId: t.arg.id({ required: true, description: "The conversation." }) },
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
