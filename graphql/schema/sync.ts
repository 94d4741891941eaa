import { create } from "@bufbuild/protobuf";
import { ReceiptKind, ReceiptSchema, type Receipt } from "../../gen/chat/v1/messaging_pb.js";
import { InboxEntrySchema, MessageReaderSchema, type InboxEntry, type MessageReader } from "../../gen/chat/v1/sync_pb.js";
import { listSize, type Builder } from "../builder.js";
import { openFeed, unwrapFeed } from "../live-feed.js";
import { pageSize } from "./paging.js";
import { protoEnum, toConversation, toMessage, type SharedTypes } from "./types.js";

const DEFAULT_INBOX_PAGE = 50;
const MAX_INBOX_PAGE = 200;

/** Inbox, unread counts, read receipts: SyncService. */
export function registerSync(builder: Builder, types: SharedTypes): void {
  const entry = builder.objectRef<InboxEntry>("InboxEntry").implement({
    description: "One conversation in your inbox.",
    fields: (t) => ({
      conversation: t.field({ type: types.conversation, resolve: (e) => toConversation(e.conversation ?? {}) }),
      lastMessage: t.field({
        type: types.message,
        nullable: true,
        description: "The last message you can see, its text cut to the first 300 characters (a preview).",
        resolve: (e) => (e.lastMessage ? toMessage(e.lastMessage) : null),
      }),
      unreadCount: t.expose("unreadCount", { type: "UInt64", description: "Exactly the messages after your read watermark." }),
      readSeq: t.expose("readSeq", { type: "UInt64", description: "Your read watermark: the last seq you have read." }),
      lastActivityAt: t.expose("lastActivityAt", { type: "DateTime", nullable: true }),
    }),
  });

  const inbox = builder.objectRef<{ entries: InboxEntry[]; nextPageToken: string }>("InboxConnection").implement({
    description: "A page of the inbox, most recent activity first. Pass `pageInfo.endCursor` as `after` for the next page.",
    fields: (t) => ({
      nodes: t.field({ type: [entry], resolve: (page) => page.entries }),
      pageInfo: t.field({
        type: types.pageInfo,
        resolve: (page) => ({ hasNextPage: page.nextPageToken !== "", hasPreviousPage: false, startCursor: null, endCursor: page.nextPageToken || null }),
      }),
    }),
  });

  builder.queryField("inbox", (t) =>
    t.field({
      type: inbox,
      description: `Your conversations (current and former) with unread counts. \`first\`: 1-${MAX_INBOX_PAGE}, default ${DEFAULT_INBOX_PAGE}.`,
      extensions: listSize({ slicingArguments: ["first"], defaultSize: DEFAULT_INBOX_PAGE, maxSize: MAX_INBOX_PAGE, sizedFields: ["nodes"] }),
      args: {
        first: t.arg.int({ required: false }),
        after: t.arg.string({ required: false, description: "`pageInfo.endCursor` of the previous page." }),
      },
      resolve: async (_root, args, ctx) => {
        const principal = await ctx.principal();
        const page = await ctx.services.sync.getInbox(principal, { limit: pageSize(args.first, "first"), pageToken: args.after ?? "" });
        return { entries: page.entries.map((e) => create(InboxEntrySchema, e)), nextPageToken: page.nextPageToken };
      },
    }),
  );

  const markReadPayload = builder.objectRef<{ conversationId: string; readSeq: bigint }>("MarkReadPayload").implement({
    fields: (t) => ({
      conversationId: t.exposeID("conversationId"),
      readSeq: t.expose("readSeq", { type: "UInt64", description: "Your read watermark now: it never moves back." }),
    }),
  });

  builder.mutationField("markRead", (t) =>
    t.field({
      type: markReadPayload,
      description: "Moves your read watermark in a conversation to `seq` (never back); your devices and the senders hear of it.",
      args: { conversationId: t.arg.id({ required: true }), seq: t.arg({ type: "UInt64", required: true }) },
      resolve: async (_root, args, ctx) => {
        const conversationId = String(args.conversationId);
        return { conversationId, readSeq: await ctx.services.sync.markRead(await ctx.principal(), conversationId, args.seq) };
      },
    }),
  );

  const reader = builder.objectRef<MessageReader>("MessageReader").implement({
    fields: (t) => ({
      userId: t.exposeID("userId"),
      readAt: t.expose("readAt", { type: "DateTime", nullable: true }),
    }),
  });

  builder.queryField("messageReaders", (t) =>
    t.field({
      type: [reader],
      description: "Who has read the message at `seq`, and when (not its sender, nor members who joined after it).",
      extensions: listSize({ defaultSize: 100, maxSize: 100_000 }),
      args: { conversationId: t.arg.id({ required: true }), seq: t.arg({ type: "UInt64", required: true }) },
      resolve: async (_root, args, ctx) =>
        (await ctx.services.sync.getMessageReaders(await ctx.principal(), String(args.conversationId), args.seq)).map((r) => create(MessageReaderSchema, r)),
    }),
  );

  const receiptKind = protoEnum<ReceiptKind>(builder, "ReceiptKind", ReceiptKind, "What a receipt reports.", {
    DELIVERED: "A device of the user has the messages up to `seq` (per device).",
    READ: "The user has read up to `seq` (per user, shared by their devices).",
  });

  const receipt = builder.objectRef<Receipt>("Receipt").implement({
    fields: (t) => ({
      conversationId: t.exposeID("conversationId"),
      userId: t.exposeID("userId"),
      deviceId: t.exposeString("deviceId", { description: "The device, for DELIVERED; empty for READ." }),
      kind: t.expose("kind", { type: receiptKind }),
      seq: t.expose("seq", { type: "UInt64" }),
      at: t.expose("at", { type: "DateTime", nullable: true }),
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
