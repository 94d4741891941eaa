import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ReceiptKind, ReceiptSchema, type Receipt } from "../../gen/chat/v1/messaging_pb.js";
import { InboxEntrySchema, MessageReaderSchema, type InboxEntry, type MessageReader } from "../../gen/chat/v1/sync_pb.js";
import { ChatError } from "../../services/errors.js";
import { inboxPageToken } from "../../services/sync/index.js";
import { listSize, type Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import type { Page } from "./connections.js";
import { pageInfoOf } from "./connections.js";
import { attempt, inGraphQLTerms, type Outcome } from "./payloads.js";
import { pageSize } from "./paging.js";
import { orNull, protoEnum, toConversation, toMessage, type SharedTypes } from "./types.js";

const DEFAULT_INBOX_PAGE = 50;
const MAX_INBOX_PAGE = 200;

const entryCursor = (entry: InboxEntry) =>
  inboxPageToken(entry.lastActivityAt ? timestampDate(entry.lastActivityAt) : new Date(0), entry.conversation?.conversationId ?? "");

/** Inbox, unread counts, read and delivery receipts: SyncService. */
export function registerSync(builder: Builder, types: SharedTypes): void {
  const entry = builder.objectRef<InboxEntry>("InboxEntry").implement({
    description: "One conversation in your inbox.",
    fields: (t) => ({
      conversation: t.field({ type: types.conversation, description: "The conversation.", resolve: (e) => toConversation(e.conversation ?? {}) }),
      lastMessage: t.field({
        type: types.message,
        nullable: true,
        description: "The last message you can see, its text cut to the first 300 characters (a preview); null if there is none.",
        resolve: (e) => (e.lastMessage ? toMessage(e.lastMessage) : null),
      }),
      unreadCount: t.expose("unreadCount", { type: "UInt64", description: "Exactly the messages after your read watermark." }),
      readSeq: t.expose("readSeq", { type: "UInt64", description: "Your read watermark: the last seq you have read." }),
      lastActivityAt: t.expose("lastActivityAt", { type: "DateTime", nullable: true, description: "When its last message was sent: the inbox's order." }),
    }),
  });

  const edge = builder.objectRef<InboxEntry>("InboxEdge").implement({
    description: "One entry of an InboxConnection with its cursor.",
    fields: (t) => ({
      cursor: t.string({ description: "Pass as `after` for the entries after this one.", resolve: entryCursor }),
      node: t.field({ type: entry, description: "The entry.", resolve: (e) => e }),
    }),
  });

  const inbox = builder.objectRef<Page<InboxEntry>>("InboxConnection").implement({
    description:
      "A page of the inbox, most recent activity first. Pass `pageInfo.endCursor` as `after` for the next page. It pages forward " +
      "only (hasPreviousPage says whether `after` was given) and has no totalCount: the inbox is read a page at a time.",
    fields: (t) => ({
      edges: t.field({ type: [edge], description: "The entries with their cursors.", resolve: (page) => [...page.nodes] }),
      nodes: t.field({ type: [entry], description: "The entries, when you need no cursors.", resolve: (page) => [...page.nodes] }),
      pageInfo: t.field({ type: types.pageInfo, description: "Where this page lies.", resolve: pageInfoOf }),
    }),
  });

  builder.queryField("inbox", (t) =>
    t.field({
      type: inbox,
      description: `Your conversations (current and former) with unread counts, most recent activity first.`,
      extensions: listSize({ slicingArguments: ["first"], defaultSize: DEFAULT_INBOX_PAGE, maxSize: MAX_INBOX_PAGE, sizedFields: ["edges", "nodes"] }),
      args: {
        first: t.arg.int({ required: false, description: `1-${MAX_INBOX_PAGE}, default ${DEFAULT_INBOX_PAGE}.` }),
        after: t.arg.string({ required: false, description: "An edge's cursor (or `pageInfo.endCursor`): the page starts after it." }),
      },
      resolve: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        try {
          const page = await ctx.services.sync.getInbox(principal, { limit: pageSize(args.first, "first"), pageToken: args.after ?? "" });
          const nodes = page.entries.map((e) => create(InboxEntrySchema, e));
          return { nodes, cursors: nodes.map(entryCursor), hasNextPage: page.nextPageToken !== "", hasPreviousPage: args.after != null };
        } catch (error) {
          throw error instanceof ChatError ? inGraphQLTerms(error, { limit: "first", page_token: "after" }) : error;
        }
      },
    }),
  );

  const watermarkInput = (name: string, description: string, seqDescription: string) =>
    builder.inputType(name, {
      description,
      fields: (t) => ({
        conversationId: t.id({ required: true, description: "The conversation." }),
        seq: t.field({ type: "UInt64", required: true, description: seqDescription }),
      }),
    });

  const markReadPayload = builder.objectRef<Outcome<{ conversationId: string; readSeq: bigint }>>("MarkReadPayload").implement({
    description: "Your read watermark, or why it did not move (INVALID_CURSOR, NOT_A_MEMBER).",
    fields: (t) => ({
      conversationId: t.id({ nullable: true, description: "The conversation.", resolve: (o) => o.value?.conversationId ?? null }),
      readSeq: t.field({ type: "UInt64", nullable: true, description: "Your read watermark now: it never moves back.", resolve: (o) => o.value?.readSeq ?? null }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("markRead", (t) =>
    t.field({
      type: markReadPayload,
      description: "Moves your read watermark in a conversation to `seq` (never back); your devices and the senders hear of it.",
      args: {
        input: t.arg({
          type: watermarkInput("MarkReadInput", "What you have read.", "The last seq you have read."),
          required: true,
          description: "The conversation and seq.",
        }),
      },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          const conversationId = String(input.conversationId);
          return { conversationId, readSeq: await ctx.services.sync.markRead(await ctx.principal(), conversationId, input.seq) };
        }),
    }),
  );

  const markDeliveredPayload = builder.objectRef<Outcome<{ conversationId: string; seq: bigint }>>("MarkDeliveredPayload").implement({
    description: "What this device reported, or why it was refused.",
    fields: (t) => ({
      conversationId: t.id({ nullable: true, description: "The conversation.", resolve: (o) => o.value?.conversationId ?? null }),
      seq: t.field({ type: "UInt64", nullable: true, description: "The seq reported.", resolve: (o) => o.value?.seq ?? null }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("markDelivered", (t) =>
    t.field({
      type: markDeliveredPayload,
      description:
        "Reports that this device has every message up to `seq` (the device stream's `delivered` frame): the senders get a DELIVERED receipt. " +
        "Call it for the messages your `messages` subscription has handed over to the user's screen or storage.",
      args: {
        input: t.arg({
          type: watermarkInput("MarkDeliveredInput", "What this device has received.", "The last seq this device has."),
          required: true,
          description: "The conversation and seq.",
        }),
      },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => {
          const conversationId = String(input.conversationId);
          await ctx.services.sync.markDelivered(await ctx.principal(), conversationId, input.seq);
          return { conversationId, seq: input.seq };
        }),
    }),
  );

  const reader = builder.objectRef<MessageReader>("MessageReader").implement({
    description: "A member who has read a message.",
    fields: (t) => ({
      userId: t.exposeID("userId", { description: "The reader." }),
      readAt: t.expose("readAt", { type: "DateTime", nullable: true, description: "When their watermark passed the message." }),
    }),
  });

  builder.queryField("messageReaders", (t) =>
    t.field({
      type: [reader],
      description: "Who has read the message at `seq`, and when (not its sender, nor members who joined after it).",
      extensions: listSize({ defaultSize: 100, maxSize: 100_000 }),
      args: {
        conversationId: t.arg.id({ required: true, description: "The conversation." }),
        seq: t.arg({ type: "UInt64", required: true, description: "The message's seq." }),
      },
      resolve: async (_root, args, ctx) =>
        (await ctx.services.sync.getMessageReaders(await ctx.principal(), String(args.conversationId), args.seq)).map((r) => create(MessageReaderSchema, r)),
    }),
  );

  const receiptKind = protoEnum<ReceiptKind>(builder, "ReceiptKind", ReceiptKind, "What a receipt reports.", {
    DELIVERED: "A device of the user has the messages up to `seq` (per device).",
    READ: "The user has read up to `seq` (per user, shared by their devices).",
  });

  const receipt = builder.objectRef<Receipt>("Receipt").implement({
    description: "A member's watermark moved: every message up to `seq` is delivered to (or read by) them.",
    fields: (t) => ({
      conversationId: t.exposeID("conversationId", { description: "The conversation." }),
      userId: t.exposeID("userId", { description: "The member." }),
      deviceId: t.id({ nullable: true, description: "The device, for DELIVERED; null for READ.", resolve: (r) => orNull(r.deviceId) }),
      kind: t.expose("kind", { type: receiptKind, description: "Delivered or read." }),
      seq: t.expose("seq", { type: "UInt64", description: "The watermark." }),
      at: t.expose("at", { type: "DateTime", nullable: true, description: "When it moved." }),
    }),
  });

  builder.subscriptionField("receipts", (t) =>
    t.field({
      type: receipt,
      description:
        "Receipts as they happen: others reading (and receiving) your messages, and your own reads on other devices. " +
        "Live only; the inbox and `messageReaders` give the current state.",
      args: { conversationId: t.arg.id({ required: false, description: "Only this conversation's receipts." }) },
      subscribe: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        const only = args.conversationId == null ? undefined : String(args.conversationId);
        // The same access rule as reading the conversation's history.
        if (only !== undefined) await ctx.services.messaging.visibleRange(only, principal.userId);
        return openFeed(ctx.services, principal, {}, (frame) =>
          frame.case === "receipt" && (only === undefined || frame.value.conversationId === only) ? create(ReceiptSchema, frame.value) : undefined,
        );
      },
      resolve: (event) => unwrapFeed(event),
    }),
  );
}
