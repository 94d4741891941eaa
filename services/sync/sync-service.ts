import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { InboxEntrySchema, MessageReaderSchema } from "../../gen/chat/v1/sync_pb.js";
import type { Principal } from "../accounts/index.js";
import { ErrorReason, invalidArgument, requireId } from "../errors.js";
import type { MessagingService } from "../messaging/index.js";
import { toConversationView, toMessageView } from "../messaging/index.js";
import type { ConversationStore, EventBus, MessageStore, ReceiptStore } from "../ports/index.js";

export type InboxEntryView = MessageInitShape<typeof InboxEntrySchema>;
export type MessageReaderView = MessageInitShape<typeof MessageReaderSchema>;

export interface SyncServiceOptions {
  readonly conversations: ConversationStore;
  readonly messages: MessageStore;
  readonly receipts: ReceiptStore;
  readonly messaging: MessagingService;
  readonly bus: EventBus;
  readonly now?: () => Date;
}

const DEFAULT_INBOX_PAGE = 50;
const MAX_INBOX_PAGE = 200;
/** The inbox shows a preview, not the whole of a 100,000-character message. */
const PREVIEW_CHARACTERS = 300;

interface PageToken {
  readonly t: number;
  readonly c: string;
}

function encodeToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

/** The page token that continues an inbox page after this entry (a GraphQL edge's cursor). */
export const inboxPageToken = (lastActivityAt: Date, conversationId: string): string => encodeToken({ t: lastActivityAt.getTime(), c: conversationId });

function decodeToken(raw: string): PageToken {
  try {
    const token = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as Partial<PageToken>;
    if (typeof token.t === "number" && typeof token.c === "string") return { t: token.t, c: token.c };
  } catch {
    // Reported below.
  }
  throw invalidArgument(ErrorReason.INVALID_CURSOR, "page_token is not one this server issued; start again without it", "page_token");
}

export type SyncService = ReturnType<typeof createSyncService>;

/**
 * Read state across conversations. Unread counts are derived, never counted: seqs are gapless, so
 * the messages after a read watermark number exactly `visible last seq - watermark`.
 */
export function createSyncService(options: SyncServiceOptions) {
  const { conversations, messages, receipts, messaging, bus } = options;
  const now = options.now ?? (() => new Date());

  /** Checks that `seq` exists and is visible to the user; returns the conversation's visible head. */
  async function checkSeq(principal: Principal, conversationId: string, seq: bigint): Promise<void> {
    const range = await messaging.visibleRange(conversationId, principal.userId);
    const conversation = await conversations.getConversation(conversationId);
    const head = range.beforeSeq !== undefined ? range.beforeSeq - 1n : (conversation?.lastSeq ?? 0n);
    if (seq < 1n || seq > head) {
      throw invalidArgument(ErrorReason.INVALID_CURSOR, `seq ${seq} is not a message you can see in this conversation (1-${head})`, "seq", {
        max: String(head),
      });
    }
  }

  return {
    async getInbox(principal: Principal, input: { limit: number; pageToken: string }): Promise<{ entries: InboxEntryView[]; nextPageToken: string }> {
      if (input.limit > MAX_INBOX_PAGE) {
        throw invalidArgument(ErrorReason.PAGE_SIZE_TOO_LARGE, `limit is at most ${MAX_INBOX_PAGE}`, "limit", { max: String(MAX_INBOX_PAGE) });
      }
      const limit = input.limit || DEFAULT_INBOX_PAGE;
      const after = input.pageToken ? decodeToken(input.pageToken) : undefined;
      const rows = await conversations.listInbox(principal.userId, {
        limit: limit + 1,
        after: after && { lastActivityAt: new Date(after.t), conversationId: after.c },
      });
      const page = rows.slice(0, limit);
      const entries = await Promise.all(
        page.map(async (row): Promise<InboxEntryView> => {
          const [last] =
            row.visibleLastSeq > 0n
              ? await messages.readRange(row.conversation.conversationId, { beforeSeq: row.visibleLastSeq + 1n, limit: 1, newest: true })
              : [];
          const members = row.conversation.kind === "direct" ? await conversations.listMemberIds(row.conversation.conversationId) : [];
          const lastMessage = last && toMessageView(last);
          return {
            conversation: toConversationView(row.conversation, members, row.visibleLastSeq),
            lastMessage: lastMessage && { ...lastMessage, text: [...lastMessage.text!].slice(0, PREVIEW_CHARACTERS).join("") },
            unreadCount: row.visibleLastSeq > row.readSeq ? row.visibleLastSeq - row.readSeq : 0n,
            readSeq: row.readSeq,
            lastActivityAt: timestampFromDate(row.lastActivityAt),
          };
        }),
      );
      const lastRow = page[page.length - 1];
      return {
        entries,
        nextPageToken: rows.length > limit && lastRow ? encodeToken({ t: lastRow.lastActivityAt.getTime(), c: lastRow.conversation.conversationId }) : "",
      };
    },

    /** Moves the read watermark; the user's devices and the senders of the newly read messages hear of it. */
    async markRead(principal: Principal, conversationId: string, seq: bigint): Promise<bigint> {
      requireId(conversationId, "conversation_id");
      await checkSeq(principal, conversationId, seq);
      const before = await receipts.readSeq(conversationId, principal.userId);
      const at = now();
      const mark = await receipts.markRead(conversationId, principal.userId, seq, at);
      if (mark.moved) {
        const senders = await receipts.sendersBetween(conversationId, before, mark.seq);
        const to = [...new Set([principal.userId, ...senders])];
        await bus.publish(to, {
          kind: "receipt",
          receipt: { conversationId, userId: principal.userId, deviceId: "", kind: "read", seq: mark.seq, at },
        });
      }
      return mark.seq;
    },

    /** Moves this device's delivery cursor; the senders of the newly delivered messages hear of it. */
    async markDelivered(principal: Principal, conversationId: string, seq: bigint): Promise<void> {
      requireId(conversationId, "conversation_id");
      await checkSeq(principal, conversationId, seq);
      const cursors = await receipts.deliveryCursors(conversationId);
      const before = cursors.find((cursor) => cursor.deviceId === principal.deviceId)?.seq ?? 0n;
      const at = now();
      const mark = await receipts.markDelivered(conversationId, principal.userId, principal.deviceId, seq, at);
      if (!mark.moved) return;
      const senders = (await receipts.sendersBetween(conversationId, before, mark.seq)).filter((sender) => sender !== principal.userId);
      if (senders.length === 0) return;
      await bus.publish(senders, {
        kind: "receipt",
        receipt: { conversationId, userId: principal.userId, deviceId: principal.deviceId, kind: "delivered", seq: mark.seq, at },
      });
    },

    /**
     * Who has read the message at `seq`, and when: leaving out its sender, and members who joined after
     * it (their watermark starts at their joining, past a message they never saw).
     */
    async getMessageReaders(principal: Principal, conversationId: string, seq: bigint): Promise<MessageReaderView[]> {
      requireId(conversationId, "conversation_id");
      await checkSeq(principal, conversationId, seq);
      const [message] = await messages.readRange(conversationId, { afterSeq: seq - 1n, limit: 1 });
      const readers = await receipts.readersOf(conversationId, seq);
      const couldSee = await Promise.all(readers.map(async (reader) => ((await conversations.getMember(conversationId, reader.userId))?.joinedSeq ?? seq) <= seq));
      return readers
        .filter((reader, index) => couldSee[index] && reader.userId !== message?.senderUserId)
        .map((reader) => ({ userId: reader.userId, readAt: timestampFromDate(reader.at) }));
    },
  };
}
