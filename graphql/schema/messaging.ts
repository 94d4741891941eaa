import type { Message } from "../../gen/chat/v1/types_pb.js";
import { ErrorReason, invalidArgument } from "../../services/errors.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_TEXT_CHARACTERS } from "../../services/messaging/index.js";
import { listSize, type Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import { shareEvent } from "../shared-events.js";
import { pageSize, seqCursor } from "./paging.js";
import { toConversation, toMessage, type SharedTypes } from "./types.js";

type FeedEvent = { kind: "READY"; heads: { conversationId: string; seq: bigint }[] } | { kind: "MESSAGE"; message: Message } | { kind: "CAUGHT_UP" };
type MessageView = Parameters<typeof toMessage>[0];

/**
 * The device sessions hand every recipient of a message the same view object (one per stored
 * message), so its event is one object too, shared: the feed's selection is executed once per
 * message, not once per subscriber. Nothing in a MESSAGE event depends on the viewer.
 */
const messageEvents = new WeakMap<MessageView, FeedEvent>();

function messageEvent(view: MessageView): FeedEvent {
  let event = messageEvents.get(view);
  if (!event) messageEvents.set(view, (event = shareEvent<FeedEvent>({ kind: "MESSAGE", message: toMessage(view) })));
  return event;
}

/** Conversations, history, sending, and the message feed: MessagingService. */
export function registerMessaging(builder: Builder, types: SharedTypes): void {
  const edge = builder.objectRef<Message>("MessageEdge").implement({
    fields: (t) => ({
      cursor: t.string({ description: "The message's seq, in decimal.", resolve: (message) => message.seq.toString() }),
      node: t.field({ type: types.message, resolve: (message) => message }),
    }),
  });

  const connection = builder
    .objectRef<{ messages: Message[]; hasMore: boolean; forward: boolean }>("MessageConnection")
    .implement({
      description:
        "A page of a conversation's history, oldest first. Paging forward (first/after): hasPreviousPage is false; " +
        "paging backward (last/before, or no arguments): hasNextPage is false.",
      fields: (t) => ({
        edges: t.field({ type: [edge], resolve: (page) => page.messages }),
        nodes: t.field({ type: [types.message], resolve: (page) => page.messages }),
        pageInfo: t.field({
          type: types.pageInfo,
          resolve: ({ messages, hasMore, forward }) => ({
            hasNextPage: forward && hasMore,
            hasPreviousPage: !forward && hasMore,
            startCursor: messages[0]?.seq.toString() ?? null,
            endCursor: messages.at(-1)?.seq.toString() ?? null,
          }),
        }),
      }),
    });

  builder.queryField("conversation", (t) =>
    t.field({
      type: types.conversation,
      description: "A conversation you are or were a member of.",
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => toConversation(await ctx.services.messaging.getConversation(await ctx.principal(), String(args.id))),
    }),
  );

  builder.queryField("messages", (t) =>
    t.field({
      type: connection,
      description:
        `The messages of a conversation you can see (a former member: up to their removal). ` +
        `\`first\` (with \`after\`) pages forward from the oldest, \`last\` (with \`before\`) back from the newest; ` +
        `no arguments: the newest ${DEFAULT_PAGE_SIZE}. A page holds at most ${MAX_PAGE_SIZE} messages.`,
      extensions: listSize({ slicingArguments: ["first", "last"], defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE, sizedFields: ["edges", "nodes"] }),
      args: {
        conversationId: t.arg.id({ required: true }),
        first: t.arg.int({ required: false }),
        after: t.arg.string({ required: false, description: "An edge's cursor; the page starts after it." }),
        last: t.arg.int({ required: false }),
        before: t.arg.string({ required: false, description: "An edge's cursor; the page ends before it." }),
      },
      resolve: async (_root, args, ctx) => {
        const forward = args.first != null || args.after != null;
        if (forward && (args.last != null || args.before != null)) {
          throw invalidArgument(ErrorReason.INVALID_CURSOR, "page forward with first/after or backward with last/before, not both", forward ? "first" : "last");
        }
        const afterSeq = seqCursor(args.after, "after");
        const beforeSeq = seqCursor(args.before, "before");
        const limit = forward ? pageSize(args.first, "first") : pageSize(args.last, "last");
        const page = await ctx.services.messaging.getHistory(await ctx.principal(), {
          conversationId: String(args.conversationId),
          afterSeq: forward ? (afterSeq ?? 0n) : undefined,
          beforeSeq,
          limit,
        });
        return { messages: page.messages.map(toMessage), hasMore: page.hasMore, forward };
      },
    }),
  );

  const sendPayload = builder.objectRef<{ message: Message; duplicate: boolean }>("SendMessagePayload").implement({
    fields: (t) => ({
      message: t.expose("message", { type: types.message, description: "The stored message (the original one for a duplicate)." }),
      duplicate: t.exposeBoolean("duplicate", { description: "This clientMsgId was sent before: nothing new was stored." }),
    }),
  });

  builder.mutationField("sendMessage", (t) =>
    t.field({
      type: sendPayload,
      description:
        "Stores a message durably, then delivers it. Give `conversationId`, or `recipientUserId` to write to a user directly " +
        "(their direct conversation is opened on first use). Retrying with the same `clientMsgId` is safe: it returns the " +
        "original message with `duplicate: true`.",
      args: {
        clientMsgId: t.arg.string({ required: true, description: "Your idempotency key: 8-64 characters of A-Z a-z 0-9 _ . : - (a UUID is fine)." }),
        conversationId: t.arg.id({ required: false }),
        recipientUserId: t.arg.id({ required: false }),
        text: t.arg.string({ required: true, description: `1-${MAX_TEXT_CHARACTERS} characters (code points).` }),
      },
      resolve: async (_root, args, ctx) => {
        if (args.conversationId != null && args.recipientUserId != null) {
          throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "give conversationId or recipientUserId, not both", "conversation_id");
        }
        const to =
          args.conversationId != null
            ? { case: "conversationId" as const, value: String(args.conversationId) }
            : args.recipientUserId != null
              ? { case: "recipientUserId" as const, value: String(args.recipientUserId) }
              : { case: undefined };
        const result = await ctx.services.messaging.send(await ctx.principal(), { clientMsgId: args.clientMsgId, to, text: args.text });
        return { message: toMessage(result.message), duplicate: result.duplicate };
      },
    }),
  );

  builder.mutationField("openDirectConversation", (t) =>
    t.field({
      type: types.conversation,
      description: "Your direct conversation with a user, created on first use.",
      args: { userId: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => toConversation(await ctx.services.messaging.openDirectConversation(await ctx.principal(), String(args.userId))),
    }),
  );

  const feedKind = builder.enumType("MessageFeedEventKind", {
    values: {
      READY: { description: "First event: `heads` holds the last seq of each of your conversations as the feed starts." },
      MESSAGE: { description: "A message (`message`), in seq order within its conversation." },
      CAUGHT_UP: { description: "Everything after your `resume` cursors has been sent; what follows is live." },
    } as const,
  });

  const feedEvent = builder.objectRef<FeedEvent>("MessageFeedEvent").implement({
    description: "One event of the `messages` subscription; `kind` says which fields are set.",
    fields: (t) => ({
      kind: t.field({ type: feedKind, resolve: (event) => event.kind }),
      heads: t.field({
        type: [types.conversationCursor],
        nullable: true,
        description: "READY only. A client without cursors takes these as its cursors.",
        extensions: listSize({ defaultSize: 100, maxSize: 100_000 }),
        resolve: (event) => (event.kind === "READY" ? event.heads : null),
      }),
      message: t.field({ type: types.message, nullable: true, description: "MESSAGE only.", resolve: (event) => (event.kind === "MESSAGE" ? event.message : null) }),
    }),
  });

  builder.subscriptionField("messages", (t) =>
    t.field({
      type: feedEvent,
      description:
        "New messages of all your conversations (including ones you join later), exactly once and in seq order per conversation. " +
        "It starts with READY. To resume after a disconnect without a gap, keep a cursor per conversation, the last seq you " +
        "received (start from READY's `heads`), and pass them all as `resume`: every message after them comes first " +
        "(conversations you leave out: from their first message you can see), then CAUGHT_UP, then live messages. " +
        "Without `resume` the feed is live from READY on. If the feed ends with an error (SERVER_DRAINING, SLOW_CONSUMER, " +
        "UNAVAILABLE), subscribe again with your cursors.",
      args: {
        resume: t.arg({
          type: [types.conversationCursorInput],
          required: false,
          description: `Your cursors (at most ${100_000}; one per conversation, the highest wins).`,
        }),
      },
      subscribe: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        const resume = args.resume?.map((cursor) => ({ conversationId: String(cursor.conversationId), seq: cursor.seq }));
        return openFeed<FeedEvent>(ctx.services, principal, { resume }, (frame) => {
          switch (frame.case) {
            case "ready":
              return { kind: "READY", heads: (frame.value.heads ?? []).map((head) => ({ conversationId: head.conversationId ?? "", seq: head.seq ?? 0n })) };
            case "message":
              return messageEvent(frame.value);
            case "caughtUp":
              return { kind: "CAUGHT_UP" };
            default:
              return undefined;
          }
        });
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );
}
