import { create } from "@bufbuild/protobuf";
import { ConversationChange, ConversationEventSchema, type ConversationEvent } from "../../gen/chat/v1/messaging_pb.js";
import type { Conversation, Message } from "../../gen/chat/v1/types_pb.js";
import { MAX_ATTACHMENTS_PER_MESSAGE } from "../../services/attachments/index.js";
import { ChatError, ErrorReason, invalidArgument } from "../../services/errors.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_TEXT_CHARACTERS } from "../../services/messaging/index.js";
import { listSize, type Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import { shareEvent } from "../shared-events.js";
import type { Page } from "./connections.js";
import { inGraphQLTerms, attempt, type Outcome } from "./payloads.js";
import { pageSize, seqCursor } from "./paging.js";
import { protoEnum, toConversation, toMessage, type SharedTypes } from "./types.js";

type FeedEvent =
  | { kind: "READY"; heads: { conversationId: string; seq: bigint }[] }
  | { kind: "MESSAGE"; message: Message }
  | { kind: "CAUGHT_UP" }
  | { kind: "GOING_AWAY"; reconnectAfterMs: number };
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

/** Top-level errors of a query in GraphQL terms: `limit` is `first` or `last` there. */
async function inQueryTerms<T>(run: () => Promise<T>, names: Readonly<Record<string, string>>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof ChatError ? inGraphQLTerms(error, names) : error;
  }
}

/** Conversations, history, sending, and the message feed: MessagingService. */
export function registerMessaging(builder: Builder, types: SharedTypes): void {
  const edge = builder.objectRef<Message>("MessageEdge").implement({
    description: "One message of a MessageConnection with its cursor.",
    fields: (t) => ({
      cursor: t.string({ description: "The message's seq, in decimal.", resolve: (message) => message.seq.toString() }),
      node: t.field({ type: types.message, description: "The message.", resolve: (message) => message }),
    }),
  });

  const connection = builder.objectRef<Page<Message>>("MessageConnection").implement({
    description:
      "A page of a conversation's history, oldest first. Paging forward (first/after): hasPreviousPage is false; " +
      "paging backward (last/before, or no arguments): hasNextPage is false. No totalCount: `Conversation.lastSeq` is the count of seqs.",
    fields: (t) => ({
      edges: t.field({ type: [edge], description: "The messages with their cursors.", resolve: (page) => [...page.nodes] }),
      nodes: t.field({ type: [types.message], description: "The messages, when you need no cursors.", resolve: (page) => [...page.nodes] }),
      pageInfo: t.field({
        type: types.pageInfo,
        description: "Where this page lies.",
        resolve: (page) => ({
          hasNextPage: page.hasNextPage,
          hasPreviousPage: page.hasPreviousPage,
          startCursor: page.nodes[0]?.seq.toString() ?? null,
          endCursor: page.nodes.at(-1)?.seq.toString() ?? null,
        }),
      }),
    }),
  });

  builder.queryField("conversation", (t) =>
    t.field({
      type: types.conversation,
      nullable: true,
      description: "A conversation you are or were a member of; null (with an error at its path) if there is none you can see.",
      args: { conversationId: t.arg.id({ required: true, description: "The conversation's id." }) },
      resolve: async (_root, args, ctx) => toConversation(await ctx.services.messaging.getConversation(await ctx.principal(), String(args.conversationId))),
    }),
  );

  builder.queryField("messages", (t) =>
    t.field({
      type: connection,
      nullable: true,
      description:
        `The messages of a conversation you can see (a former member: up to their removal). ` +
        `\`first\` (with \`after\`) pages forward from the oldest, \`last\` (with \`before\`) back from the newest; ` +
        `no arguments: the newest ${DEFAULT_PAGE_SIZE}. A page holds at most ${MAX_PAGE_SIZE} messages.`,
      extensions: listSize({ slicingArguments: ["first", "last"], defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE, sizedFields: ["edges", "nodes"] }),
      args: {
        conversationId: t.arg.id({ required: true, description: "The conversation." }),
        first: t.arg.int({ required: false, description: `Page forward: at most this many (1-${MAX_PAGE_SIZE}) from the oldest, or after \`after\`.` }),
        after: t.arg.string({ required: false, description: "An edge's cursor; the page starts after it." }),
        last: t.arg.int({ required: false, description: `Page backward: at most this many (1-${MAX_PAGE_SIZE}) up to the newest, or before \`before\`.` }),
        before: t.arg.string({ required: false, description: "An edge's cursor; the page ends before it." }),
      },
      resolve: async (_root, args, ctx) => {
        const forward = args.first != null || args.after != null;
        if (forward && (args.last != null || args.before != null)) {
          throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "page forward with first/after or backward with last/before, not both", args.last != null ? "last" : "before");
        }
        const afterSeq = seqCursor(args.after, "after");
        const beforeSeq = seqCursor(args.before, "before");
        const limit = forward ? pageSize(args.first, "first") : pageSize(args.last, "last");
        const principal = await ctx.principal();
        const page = await inQueryTerms(
          () => ctx.services.messaging.getHistory(principal, { conversationId: String(args.conversationId), afterSeq: forward ? (afterSeq ?? 0n) : undefined, beforeSeq, limit }),
          { limit: forward ? "first" : "last", before_seq: "before", after_seq: "after" },
        );
        const nodes = page.messages.map(toMessage);
        return { nodes, cursors: nodes.map((m) => m.seq.toString()), hasNextPage: forward && page.hasMore, hasPreviousPage: !forward && page.hasMore };
      },
    }),
  );

  const sendInput = builder.inputType("SendMessageInput", {
    description: "A message to send: give `conversationId`, or `recipientUserId` to write to a user directly.",
    fields: (t) => ({
      clientMsgId: t.string({ required: true, description: "Your idempotency key: 8-64 characters of A-Z a-z 0-9 _ . : - (a UUID is fine)." }),
      conversationId: t.id({ required: false, description: "The conversation to send to." }),
      recipientUserId: t.id({ required: false, description: "A user: sends into your direct conversation with them, opened on first use." }),
      text: t.string({ required: false, description: `0-${MAX_TEXT_CHARACTERS} characters (code points); empty only with attachments.` }),
      attachmentIds: t.idList({
        required: false,
        description: `Up to ${MAX_ATTACHMENTS_PER_MESSAGE} attachments you uploaded to this conversation (\`createUpload\`).`,
      }),
    }),
  });

  const sendPayload = builder.objectRef<Outcome<{ message: Message; duplicate: boolean }>>("SendMessagePayload").implement({
    description: "The stored message, or why it was not stored.",
    fields: (t) => ({
      message: t.field({
        type: types.message,
        nullable: true,
        description: "The stored message (the original one for a duplicate).",
        resolve: (o) => o.value?.message ?? null,
      }),
      duplicate: t.boolean({
        nullable: true,
        description: "This clientMsgId was sent before: nothing new was stored.",
        resolve: (o) => (o.value ? o.value.duplicate : null),
      }),
      userErrors: t.field({ type: [types.userError], description: "Why it was not sent (TEXT_TOO_LONG, NOT_A_MEMBER, ...); empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("sendMessage", (t) =>
    t.field({
      type: sendPayload,
      description:
        "Stores a message durably, then delivers it. Retrying with the same `clientMsgId` is safe: it returns the " +
        "original message with `duplicate: true`.",
      args: { input: t.arg({ type: sendInput, required: true, description: "The message." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          const principal = await ctx.principal();
          if ((input.conversationId == null) === (input.recipientUserId == null)) {
            throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "give conversationId or recipientUserId (exactly one)", "conversationId");
          }
          const to =
            input.conversationId != null
              ? { case: "conversationId" as const, value: String(input.conversationId) }
              : { case: "recipientUserId" as const, value: String(input.recipientUserId) };
          const result = await ctx.services.messaging.send(principal, {
            clientMsgId: input.clientMsgId,
            to,
            text: input.text ?? "",
            attachmentIds: (input.attachmentIds ?? []).map(String),
          });
          return { message: toMessage(result.message), duplicate: result.duplicate };
        }),
    }),
  );

  const openDirectInput = builder.inputType("OpenDirectConversationInput", {
    description: "The other user.",
    fields: (t) => ({ userId: t.id({ required: true, description: "The user to talk to." }) }),
  });

  const openDirectPayload = builder.objectRef<Outcome<Conversation>>("OpenDirectConversationPayload").implement({
    description: "The direct conversation, or why there is none (USER_NOT_FOUND).",
    fields: (t) => ({
      conversation: t.field({ type: types.conversation, nullable: true, description: "The conversation.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("openDirectConversation", (t) =>
    t.field({
      type: openDirectPayload,
      description: "Your direct conversation with a user, created on first use.",
      args: { input: t.arg({ type: openDirectInput, required: true, description: "The other user." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => toConversation(await ctx.services.messaging.openDirectConversation(await ctx.principal(), String(input.userId))), { user_id: "userId" }),
    }),
  );

  const feedKind = builder.enumType("MessageFeedEventKind", {
    description: "Which kind of event of the `messages` subscription.",
    values: {
      READY: { description: "First event: `heads` holds the last seq of each of your conversations as the feed starts." },
      MESSAGE: { description: "A message (`message`), in seq order within its conversation." },
      CAUGHT_UP: { description: "Everything after your `resume` cursors has been sent; what follows is live." },
      GOING_AWAY: { description: "Last event: the server is stopping. Subscribe again with your cursors after `reconnectAfterMs`." },
    } as const,
  });

  const feedEvent = builder.objectRef<FeedEvent>("MessageFeedEvent").implement({
    description: "One event of the `messages` subscription; `kind` says which fields are set.",
    fields: (t) => ({
      kind: t.field({ type: feedKind, description: "Which event.", resolve: (event) => event.kind }),
      heads: t.field({
        type: [types.conversationCursor],
        nullable: true,
        description: "READY only. A client without cursors takes these as its cursors.",
        extensions: listSize({ defaultSize: 100, maxSize: 100_000 }),
        resolve: (event) => (event.kind === "READY" ? event.heads : null),
      }),
      message: t.field({ type: types.message, nullable: true, description: "MESSAGE only.", resolve: (event) => (event.kind === "MESSAGE" ? event.message : null) }),
      reconnectAfterMs: t.int({
        nullable: true,
        description: "GOING_AWAY only: wait this long (spreads the reconnections of many clients), then subscribe again.",
        resolve: (event) => (event.kind === "GOING_AWAY" ? event.reconnectAfterMs : null),
      }),
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
        "Without `resume` the feed is live from READY on. When the server stops, the feed ends with GOING_AWAY; if it ends " +
        "with an error (SLOW_CONSUMER, UNAVAILABLE), subscribe again with your cursors as well. Viewing a message does not " +
        "report it delivered: call `markDelivered`.",
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
            case "goAway":
              return { kind: "GOING_AWAY", reconnectAfterMs: frame.value.reconnectAfterMs ?? 0 };
            default:
              return undefined;
          }
        });
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );

  const change = protoEnum<ConversationChange>(builder, "ConversationChange", ConversationChange, "How your set of conversations changed.", {
    JOINED: "You were added to a group (or a direct conversation was opened with you).",
    LEFT: "You left or were removed: its history ends there for you.",
    UPDATED: "It changed (a group renamed).",
  });

  const conversationEvent = builder.objectRef<ConversationEvent>("ConversationEvent").implement({
    description: "One change to your set of conversations.",
    fields: (t) => ({
      change: t.expose("change", { type: change, description: "What happened." }),
      conversation: t.field({ type: types.conversation, description: "The conversation as it is now.", resolve: (e) => toConversation(e.conversation ?? {}) }),
    }),
  });

  builder.subscriptionField("conversationChanges", (t) =>
    t.field({
      type: conversationEvent,
      description: "Conversations you join or leave and the ones renamed, as they happen. Live only: `inbox` gives the current state.",
      subscribe: async (_root, _args, ctx) => {
        const principal = await ctx.principal();
        return openFeed(ctx.services, principal, {}, (frame) => (frame.case === "conversation" ? create(ConversationEventSchema, frame.value) : undefined));
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );
}
