import type { Database } from "better-sqlite3";
import type { AppendResult, AttachmentRef, MessageKindName, NewMessage, StoredMessage } from "../../services/ports/index.js";
import { storedFromNew, withOptional } from "../store-common/stored-message.js";

export interface MessageRow {
  conversation_id: string;
  seq: bigint;
  message_id: string;
  sender_user_id: string;
  sender_device_id: string;
  client_msg_id: string;
  kind: string;
  text: string;
  sent_at: bigint;
  system_json: string | null;
  attachments_json: string | null;
}

export const MESSAGE_COLUMNS = `conversation_id, seq, message_id, sender_user_id, sender_device_id, client_msg_id, kind, text, sent_at, system_json, attachments_json`;

export function messageFromRow(row: MessageRow): StoredMessage {
  const stored = {
    messageId: row.message_id,
    conversationId: row.conversation_id,
    seq: row.seq,
    senderUserId: row.sender_user_id,
    senderDeviceId: row.sender_device_id,
    clientMsgId: row.client_msg_id,
    kind: row.kind as MessageKindName,
    text: row.text,
    sentAt: new Date(Number(row.sent_at)),
  };
  return withOptional(stored, row.system_json ?? undefined, row.attachments_json ? (JSON.parse(row.attachments_json) as AttachmentRef[]) : undefined);
}

/** Appending to a conversation that does not exist: a bug in the caller, which checks membership first. */
export class UnknownConversationError extends Error {
  override readonly name = "UnknownConversationError";
  constructor(readonly conversationId: string) {
    super(`conversation "${conversationId}" does not exist`);
  }
}

/**
 * The primitives every write to a conversation's log is made of, shared by plain appends and by the
 * system events of group changes. The writing ones expect to run inside a transaction.
 */
export interface SqliteLog {
  /** The message stored under this idempotency key, if any. */
  findByKey(senderUserId: string, clientMsgId: string): StoredMessage | undefined;
  /**
   * Takes the conversation's next seq, stores the message under it and moves the sender's read
   * watermark to it. Throws UnknownConversationError (having changed nothing) if there is no such
   * conversation.
   */
  appendNext(message: NewMessage): StoredMessage;
  /** A user's send: the message already stored under its idempotency key, or appendNext. */
  appendOnce(message: NewMessage): AppendResult;
  /** Inserts a move of the user's read watermark to `seq` if that is past it; returns whether it moved. */
  moveReadMark(conversationId: string, userId: string, seq: bigint, at: number): boolean;
  /** The user's read watermark, 0 when none. */
  readSeq(conversationId: string, userId: string): bigint;
}

/** Expects `db.defaultSafeIntegers(true)`: seqs are read as bigint. */
export function createSqliteLog(db: Database): SqliteLog {
  const findByKey = db.prepare<[string, string], MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE sender_user_id = ? AND client_msg_id = ?`,
  );
  // Taking the seq and storing the message happen in the same transaction, so a seq is never
  // handed out without its message: gapless even across a crash.
  const takeSeq = db
    .prepare<[string], bigint>(`UPDATE conversations SET last_seq = last_seq + 1 WHERE conversation_id = ? RETURNING last_seq`)
    .pluck();
  const insert = db.prepare(
    `INSERT INTO messages (${MESSAGE_COLUMNS}) VALUES (@conversationId, @seq, @messageId, @senderUserId, @senderDeviceId, @clientMsgId, @kind, @text, @sentAt, @systemJson, @attachmentsJson)`,
  );
  // The watermark is the newest row: one seek backwards down the primary key.
  const watermark = db
    .prepare<[string, string], bigint>(
      `SELECT seq FROM read_marks WHERE conversation_id = ? AND user_id = ? ORDER BY seq DESC LIMIT 1`,
    )
    .pluck();
  const insertMark = db.prepare<[string, string, bigint, number]>(
    `INSERT INTO read_marks (conversation_id, user_id, seq, at) VALUES (?, ?, ?, ?)`,
  );

  function readSeq(conversationId: string, userId: string): bigint {
    return watermark.get(conversationId, userId) ?? 0n;
  }

  function moveReadMark(conversationId: string, userId: string, seq: bigint, at: number): boolean {
    if (seq <= readSeq(conversationId, userId)) return false;
    insertMark.run(conversationId, userId, seq, at);
    return true;
  }

  function appendNext(message: NewMessage): StoredMessage {
    const seq = takeSeq.get(message.conversationId);
    if (seq === undefined) throw new UnknownConversationError(message.conversationId);
    const stored = storedFromNew(message, seq);
    insert.run({
      conversationId: stored.conversationId,
      seq,
      messageId: stored.messageId,
      senderUserId: stored.senderUserId,
      senderDeviceId: stored.senderDeviceId,
      clientMsgId: stored.clientMsgId,
      kind: stored.kind,
      text: stored.text,
      sentAt: stored.sentAt.getTime(),
      systemJson: stored.systemJson ?? null,
      attachmentsJson: stored.attachments ? JSON.stringify(stored.attachments) : null,
    });
    // Whoever writes has read up to what they wrote.
    moveReadMark(stored.conversationId, stored.senderUserId, seq, stored.sentAt.getTime());
    return stored;
  }

  function storedByKey(senderUserId: string, clientMsgId: string): StoredMessage | undefined {
    const row = findByKey.get(senderUserId, clientMsgId);
    return row && messageFromRow(row);
  }

  return {
    findByKey: storedByKey,
    appendNext,
    appendOnce(message) {
      // Sees the rows written earlier in this same batch too, so a repeat within one flush resolves
      // to the first of them.
      const original = storedByKey(message.senderUserId, message.clientMsgId);
      if (original) return { message: original, duplicate: true };
      return { message: appendNext(message), duplicate: false };
    },
    moveReadMark,
    readSeq,
  };
}
