import type {
  AttachmentRef,
  ConversationKindName,
  ConversationRecord,
  GroupRoleName,
  MemberRecord,
  MessageKindName,
  StoredMessage,
} from "../../services/ports/index.js";
import { withOptional } from "../store-common/stored-message.js";
import type { Row, Statement } from "./session.js";

/**
 * The layout of the conversation_log table (see schema.ts): what each kind of row is, how it is
 * written inside a conditional batch, and how it is read back.
 */

/** The first clustering column: which kind of row of the partition this is. */
export const Entry = { message: 0, key: 1, member: 2, move: 3 } as const;

export interface LogTables {
  readonly log: string;
}

/** The per-conversation values kept in static columns. */
export interface ConversationStatics {
  readonly conversationId: string;
  readonly kind: ConversationKindName;
  readonly title: string;
  readonly createdAt: Date;
  readonly lastSeq: bigint;
  /** sentAt of the message at lastSeq; undefined while there is none. */
  readonly lastSentAt?: Date;
  readonly memberCount: number;
  /** Seq of the last membership change (0 for a direct conversation: its members joined at 0). */
  readonly membershipSeq: bigint;
  /** The membership change whose user-index rows are known to be written; undefined before the first. */
  readonly indexedSeq?: bigint;
}

export const STATIC_COLUMNS = `conversation_id, conversation_kind, title, created_at, last_seq, last_sent_at, member_count, membership_seq, indexed_seq`;
export const MESSAGE_COLUMNS = `conversation_id, seq, message_id, sender_user_id, sender_device_id, client_msg_id, kind, body, sent_at, system_json, attachments_json`;
export const MEMBER_COLUMNS = `conversation_id, user_id, role, joined_seq, left_seq, joined_at, left_at, changed_seq`;

/** Undefined when the partition holds no conversation (no static row). */
export function staticsFromRow(row: Row | undefined): ConversationStatics | undefined {
  if (!row || row.conversation_kind == null || row.last_seq == null) return undefined;
  const statics = {
    conversationId: row.conversation_id as string,
    kind: row.conversation_kind as ConversationKindName,
    title: (row.title as string | null) ?? "",
    createdAt: row.created_at as Date,
    lastSeq: row.last_seq as bigint,
    memberCount: (row.member_count as number | null) ?? 0,
    membershipSeq: (row.membership_seq as bigint | null) ?? 0n,
  };
  return {
    ...statics,
    ...(row.last_sent_at == null ? {} : { lastSentAt: row.last_sent_at as Date }),
    ...(row.indexed_seq == null ? {} : { indexedSeq: row.indexed_seq as bigint }),
  };
}

export function recordFromStatics(statics: ConversationStatics): ConversationRecord {
  return {
    conversationId: statics.conversationId,
    kind: statics.kind,
    title: statics.title,
    createdAt: statics.createdAt,
    lastSeq: statics.lastSeq,
  };
}

export function messageFromRow(row: Row): StoredMessage {
  const stored = {
    messageId: row.message_id as string,
    conversationId: row.conversation_id as string,
    seq: row.seq as bigint,
    senderUserId: row.sender_user_id as string,
    senderDeviceId: row.sender_device_id as string,
    clientMsgId: row.client_msg_id as string,
    kind: row.kind as MessageKindName,
    text: (row.body as string | null) ?? "",
    sentAt: row.sent_at as Date,
  };
  const attachments = row.attachments_json ? (JSON.parse(row.attachments_json as string) as AttachmentRef[]) : undefined;
  return withOptional(stored, (row.system_json as string | null) ?? undefined, attachments);
}

/** A member row as stored: the record plus what the user index needs. */
export interface MemberState {
  readonly userId: string;
  readonly role: GroupRoleName;
  readonly joinedSeq: bigint;
  readonly leftSeq?: bigint;
  readonly joinedAt: Date;
  /** sentAt of the event that removed the member (the former member's last activity). */
  readonly leftAt?: Date;
  /** Seq of the last change that touched the row: the write timestamp of its user-index row. */
  readonly changedSeq: bigint;
}

export function memberStateFromRow(row: Row): MemberState {
  const state = {
    userId: row.user_id as string,
    role: row.role as GroupRoleName,
    joinedSeq: row.joined_seq as bigint,
    joinedAt: row.joined_at as Date,
    changedSeq: (row.changed_seq as bigint | null) ?? (row.joined_seq as bigint),
  };
  if (row.left_seq == null) return state;
  return { ...state, leftSeq: row.left_seq as bigint, ...(row.left_at == null ? {} : { leftAt: row.left_at as Date }) };
}

export function memberRecord(conversationId: string, state: MemberState): MemberRecord {
  const record = { conversationId, userId: state.userId, role: state.role, joinedSeq: state.joinedSeq, joinedAt: state.joinedAt };
  return state.leftSeq === undefined ? record : { ...record, leftSeq: state.leftSeq };
}

/** Statements that make up the conditional batches. */
export function logStatements(tables: LogTables) {
  const { log } = tables;
  return {
    insertMessage(message: StoredMessage): Statement {
      return {
        query: `INSERT INTO ${log} (conversation_id, entry, seq, user_id, client_key, message_id, sender_user_id, sender_device_id, client_msg_id, kind, body, sent_at, system_json, attachments_json)
                VALUES (?, ${Entry.message}, ?, '', '', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        params: [
          message.conversationId,
          message.seq,
          message.messageId,
          message.senderUserId,
          message.senderDeviceId,
          message.clientMsgId,
          message.kind,
          message.text,
          message.sentAt,
          message.systemJson ?? null,
          message.attachments ? JSON.stringify(message.attachments) : null,
        ],
      };
    },
    /**
     * Claims the idempotency key for `seq`. The condition makes the whole batch fail if the key is
     * taken, and the failed batch returns the key's row, so the caller learns the original's seq.
     */
    claimKey(conversationId: string, senderUserId: string, clientMsgId: string, seq: bigint): Statement {
      return {
        query: `INSERT INTO ${log} (conversation_id, entry, seq, user_id, client_key, key_seq) VALUES (?, ${Entry.key}, 0, ?, ?, ?) IF NOT EXISTS`,
        params: [conversationId, senderUserId, clientMsgId, seq],
      };
    },
    putMember(conversationId: string, member: MemberState): Statement {
      return {
        query: `INSERT INTO ${log} (conversation_id, entry, seq, user_id, client_key, role, joined_seq, left_seq, joined_at, left_at, changed_seq)
                VALUES (?, ${Entry.member}, 0, ?, '', ?, ?, ?, ?, ?, ?)`,
        params: [
          conversationId,
          member.userId,
          member.role,
          member.joinedSeq,
          member.leftSeq ?? null,
          member.joinedAt,
          member.leftAt ?? null,
          member.changedSeq,
        ],
      };
    },
  };
}

export function logQueries(tables: LogTables) {
  const { log } = tables;
  return {
    statics: `SELECT DISTINCT ${STATIC_COLUMNS} FROM ${log} WHERE conversation_id = ?`,
    messagesByKeySeqs: `SELECT ${MESSAGE_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.message} AND seq IN ?`,
    member: `SELECT ${MEMBER_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.member} AND seq = 0 AND user_id = ? AND client_key = ''`,
    membersIn: `SELECT ${MEMBER_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.member} AND seq = 0 AND user_id IN ?`,
    members: `SELECT ${MEMBER_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.member}`,
    rangeAscending: `SELECT ${MESSAGE_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.message} AND seq > ? AND seq < ? LIMIT ?`,
    rangeDescending: `SELECT ${MESSAGE_COLUMNS} FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.message} AND seq > ? AND seq < ? ORDER BY entry DESC, seq DESC LIMIT ?`,
    senders: `SELECT sender_user_id, kind FROM ${log} WHERE conversation_id = ? AND entry = ${Entry.message} AND seq > ? AND seq <= ?`,
  };
}
