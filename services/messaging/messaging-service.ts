import type { Principal } from "../accounts/index.js";
import { ChatError, ErrorReason, invalidArgument, notFound, permissionDenied, requireId } from "../errors.js";
import { directConversationId, newId } from "../lib/ids.js";
import { noTelemetry, type AccountStore, type AttachmentRef, type ConversationHead, type ConversationRecord, type ConversationStore, type EventBus, type MessageStore, type RateLimiter, type StoredMessage, type Telemetry } from "../ports/index.js";
import { toConversationView, type ConversationView } from "./conversation-view.js";
import { toMessageView, type MessageView } from "./message-view.js";

export const MAX_TEXT_CHARACTERS = 100_000;
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
const CLIENT_MSG_ID = /^[A-Za-z0-9_.:-]{8,64}$/;

export interface SendInput {
  readonly clientMsgId: string;
  readonly to: { readonly case: "conversationId" | "recipientUserId"; readonly value: string } | { readonly case: undefined; readonly value?: undefined };
  readonly text: string;
  /** Ids from AttachmentsService.CreateUpload, uploaded by the sender to this conversation. */
  readonly attachmentIds?: readonly string[];
}

export interface HistoryInput {
  readonly conversationId: string;
  readonly beforeSeq?: bigint;
  readonly afterSeq?: bigint;
  readonly limit: number;
}

export interface MessagingServiceOptions {
  readonly accounts: AccountStore;
  readonly conversations: ConversationStore;
  readonly messages: MessageStore;
  readonly bus: EventBus;
  /** Per-user send budget; absent: unlimited. */
  readonly sendLimiter?: RateLimiter;
  readonly now?: () => Date;
  readonly telemetry?: Telemetry;
  /** Turns attachment ids into references after checking them; absent: messages cannot carry attachments. */
  readonly attachments?: { resolve(principal: Principal, conversationId: string, attachmentIds: readonly string[]): Promise<AttachmentRef[]> };
  /**
   * Told of each new message once it is stored and published (push notifications). Called on the send
   * path, so it must return at once and do its work later.
   */
  readonly afterPublish?: (message: StoredMessage, memberIds: readonly string[]) => void;
}

/**
 * Lets concurrent sends reach the store in a chosen order: `send` waits for `after` just before it
 * hands the message to the store, and calls `submitted` once it has (or once it has failed before).
 */
export interface SendOrder {
  readonly after: Promise<void>;
  readonly submitted: () => void;
}

/** The seqs a member may see: from the event that added them to the one that removed them. */
export interface VisibleRange {
  /** Exclusive lower bound. */
  readonly afterSeq: bigint;
  /** Exclusive upper bound; absent while a member. */
  readonly beforeSeq?: bigint;
}

const clampAfter = (range: VisibleRange, afterSeq: bigint | undefined) => (afterSeq === undefined || afterSeq < range.afterSeq ? range.afterSeq : afterSeq);
const clampBefore = (range: VisibleRange, beforeSeq: bigint | undefined) =>
  range.beforeSeq === undefined ? beforeSeq : beforeSeq === undefined || beforeSeq > range.beforeSeq ? range.beforeSeq : beforeSeq;

/** Counts code points, not UTF-16 units, so an emoji is one character as users count them. */
function exceedsCharacters(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let count = 0;
  for (const _ of text) if (++count > max) return true;
  return false;
}

export type MessagingService = ReturnType<typeof createMessagingService>;

export function createMessagingService(options: MessagingServiceOptions) {
  const { conversations, messages, bus, accounts } = options;
  const now = options.now ?? (() => new Date());
  const telemetry = options.telemetry ?? noTelemetry;

  const notMember = () =>
    permissionDenied(ErrorReason.NOT_A_MEMBER, "you are not a member of this conversation (or it does not exist)", "conversation_id");

  async function requireMember(conversationId: string, userId: string): Promise<void> {
    if (!conversationId || !(await conversations.isMember(conversationId, userId))) throw notMember();
  }

  async function openDirect(principal: Principal, otherUserId: string): Promise<ConversationRecord> {
    if (otherUserId === principal.userId) {
      throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "a direct conversation needs another user", "user_id");
    }
    const [other] = otherUserId ? await accounts.findUsersByIds([otherUserId]) : [];
    if (!other) throw notFound(ErrorReason.USER_NOT_FOUND, `no user has the id "${otherUserId}"`, "user_id");
    return conversations.ensureDirectConversation(directConversationId(principal.userId, otherUserId), [principal.userId, otherUserId], now());
  }

  async function viewOf(record: ConversationRecord, range: VisibleRange): Promise<ConversationView> {
    const members = record.kind === "direct" ? await conversations.listMemberIds(record.conversationId) : [];
    const lastSeq = range.beforeSeq !== undefined && range.beforeSeq - 1n < record.lastSeq ? range.beforeSeq - 1n : record.lastSeq;
    return toConversationView(record, members, lastSeq);
  }

  /** Current and former members may read; what they see is their visible range. */
  async function visibleRange(conversationId: string, userId: string): Promise<VisibleRange> {
    const member = conversationId ? await conversations.getMember(conversationId, userId) : undefined;
    if (!member) throw notMember();
    return {
      afterSeq: member.joinedSeq > 0n ? member.joinedSeq - 1n : 0n,
      beforeSeq: member.leftSeq === undefined ? undefined : member.leftSeq + 1n,
    };
  }

  async function sendInOrder(principal: Principal, input: SendInput, traceId: string | undefined, order: SendOrder | undefined): Promise<{ message: MessageView; duplicate: boolean }> {
    const started = performance.now();
    if (!CLIENT_MSG_ID.test(input.clientMsgId)) {
      throw invalidArgument(
        ErrorReason.CLIENT_MSG_ID_INVALID,
        "client_msg_id must be 8-64 characters of A-Z a-z 0-9 _ . : - (a UUID is fine)",
        "client_msg_id",
      );
    }
    const attachmentIds = input.attachmentIds ?? [];
    if (input.text.trim().length === 0 && attachmentIds.length === 0) {
      throw invalidArgument(ErrorReason.TEXT_EMPTY, "the message text is empty (a message needs text, attachments or both)", "text");
    }
    if (exceedsCharacters(input.text, MAX_TEXT_CHARACTERS)) {
      throw invalidArgument(ErrorReason.TEXT_TOO_LONG, `the message text is longer than ${MAX_TEXT_CHARACTERS} characters`, "text", {
        max: String(MAX_TEXT_CHARACTERS),
      });
    }
    if (input.to.case === "conversationId") requireId(input.to.value, "conversation_id");
    else if (input.to.case === "recipientUserId") requireId(input.to.value, "recipient_user_id");
    if (options.sendLimiter) {
      const decision = await options.sendLimiter.take(`send:${principal.userId}`);
      if (!decision.allowed) {
        throw new ChatError(
          "resource_exhausted",
          ErrorReason.RATE_LIMITED,
          `too many messages: wait ${decision.retryAfterMs} ms before sending again`,
          "",
          { retry_after_ms: String(decision.retryAfterMs) },
        );
      }
    }
    let conversationId: string;
    if (input.to.case === "conversationId") {
      conversationId = input.to.value;
      await requireMember(conversationId, principal.userId);
    } else if (input.to.case === "recipientUserId") {
      conversationId = (await openDirect(principal, input.to.value)).conversationId;
    } else {
      throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "set conversation_id or recipient_user_id", "conversation_id");
    }
    let attachments: AttachmentRef[] = [];
    if (attachmentIds.length > 0) {
      if (!options.attachments) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "this server does not accept attachments; send the message without attachment_ids", "attachment_ids");
      }
      attachments = await options.attachments.resolve(principal, conversationId, attachmentIds);
    }
    if (order) await order.after;
    const sentAt = now();
    const writeStarted = performance.now();
    const appending = messages.append({
      messageId: newId("m", sentAt.getTime()),
      conversationId,
      senderUserId: principal.userId,
      senderDeviceId: principal.deviceId,
      clientMsgId: input.clientMsgId,
      kind: "text",
      text: input.text,
      sentAt,
      ...(attachments.length > 0 ? { attachments } : {}),
    });
    order?.submitted();
    const { message, duplicate } = await appending;
    const stored = performance.now();
    telemetry.storeWrite(stored - writeStarted);
    if (!duplicate) {
      const memberIds = await conversations.listMemberIds(conversationId);
      await bus.publish(memberIds, { kind: "message", message });
      const published = performance.now();
      options.afterPublish?.(message, memberIds);
      telemetry.fanOut(published - stored);
      telemetry.messageAccepted({ messageId: message.messageId, conversationId, seq: message.seq, traceId }, published - started);
    }
    return { message: toMessageView(message), duplicate };
  }

  return {
    /** Validates, stores durably (assigning the seq), then fans out. Resolves only after the write. */
    async send(principal: Principal, input: SendInput, traceId?: string, order?: SendOrder): Promise<{ message: MessageView; duplicate: boolean }> {
      try {
        return await sendInOrder(principal, input, traceId, order);
      } finally {
        order?.submitted();
      }
    },

    async getHistory(principal: Principal, input: HistoryInput): Promise<{ messages: MessageView[]; hasMore: boolean }> {
      requireId(input.conversationId, "conversation_id");
      if (input.limit > MAX_PAGE_SIZE) {
        throw invalidArgument(ErrorReason.PAGE_SIZE_TOO_LARGE, `limit is at most ${MAX_PAGE_SIZE}`, "limit", { max: String(MAX_PAGE_SIZE) });
      }
      if (input.beforeSeq !== undefined && input.afterSeq !== undefined) {
        throw invalidArgument(ErrorReason.INVALID_CURSOR, "give before_seq or after_seq, not both", "before_seq");
      }
      const range = await visibleRange(input.conversationId, principal.userId);
      const limit = input.limit || DEFAULT_PAGE_SIZE;
      const backwards = input.afterSeq === undefined;
      const page = await messages.readRange(input.conversationId, {
        afterSeq: clampAfter(range, input.afterSeq),
        beforeSeq: clampBefore(range, input.beforeSeq),
        limit: limit + 1,
        newest: backwards,
      });
      const hasMore = page.length > limit;
      const kept = hasMore ? (backwards ? page.slice(1) : page.slice(0, limit)) : page;
      return { messages: kept.map(toMessageView), hasMore };
    },

    async openDirectConversation(principal: Principal, otherUserId: string): Promise<ConversationView> {
      requireId(otherUserId, "user_id");
      return viewOf(await openDirect(principal, otherUserId), { afterSeq: 0n });
    },

    async getConversation(principal: Principal, conversationId: string): Promise<ConversationView> {
      requireId(conversationId, "conversation_id");
      const range = await visibleRange(conversationId, principal.userId);
      const record = await conversations.getConversation(conversationId);
      if (!record) throw notMember();
      return viewOf(record, range);
    },

    visibleRange,

    /** The last seq of each of the user's conversations. */
    heads(userId: string): Promise<ConversationHead[]> {
      return conversations.listHeads(userId);
    },

    /** Messages after `afterSeq` (and before `beforeSeq`), ascending, cut to what the user may see. */
    readVisible(conversationId: string, range: VisibleRange, afterSeq: bigint, beforeSeq: bigint | undefined, limit: number): Promise<StoredMessage[]> {
      return messages.readRange(conversationId, { afterSeq: clampAfter(range, afterSeq), beforeSeq: clampBefore(range, beforeSeq), limit });
    },
  };
}

