import Database from "better-sqlite3";
import type { AppendResult, MessageKindName, MessageStore, NewMessage, ReadRangeOptions, StoredMessage } from "../../services/ports/index.js";
import { createGroupCommit, type Outcome } from "./group-commit.js";

/** Larger than any burst one process sees per tick, small enough that a flush stays in the milliseconds. */
export const DEFAULT_MAX_BATCH = 1_000;

// Exclusive upper bound when the caller gives none: the largest value an INTEGER column can hold.
const MAX_INT64 = 2n ** 63n - 1n;

interface MessageRow {
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
}

const COLUMNS = `conversation_id, seq, message_id, sender_user_id, sender_device_id, client_msg_id, kind, text, sent_at, system_json`;

// Both builders list the fields one by one (no spread) so extra properties of the caller's object
// never leak into what is acked, and a fresh append deep-equals a later read of the same message:
// `systemJson` is present only when non-empty, in both.
function storedFromNew(message: NewMessage, seq: bigint): StoredMessage {
  const stored = {
    messageId: message.messageId,
    conversationId: message.conversationId,
    seq,
    senderUserId: message.senderUserId,
    senderDeviceId: message.senderDeviceId,
    clientMsgId: message.clientMsgId,
    kind: message.kind,
    text: message.text,
    sentAt: new Date(message.sentAt.getTime()),
  };
  return message.systemJson ? { ...stored, systemJson: message.systemJson } : stored;
}

function fromRow(row: MessageRow): StoredMessage {
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
  return row.system_json ? { ...stored, systemJson: row.system_json } : stored;
}

export interface SqliteMessages {
  readonly store: MessageStore;
  /** Commits the queued appends; later appends reject. */
  close(): void;
}

/** Expects `db.defaultSafeIntegers(true)`: seqs are read as bigint. */
export function createSqliteMessages(db: Database.Database, maxBatch = DEFAULT_MAX_BATCH): SqliteMessages {
  const findByClientMsgId = db.prepare<[string, string], MessageRow>(
    `SELECT ${COLUMNS} FROM messages WHERE sender_user_id = ? AND client_msg_id = ?`,
  );
  // Taking the seq and storing the message happen in the same transaction, so a seq is never
  // handed out without its message: gapless even across a crash.
  const takeSeq = db
    .prepare<[string], bigint>(`UPDATE conversations SET last_seq = last_seq + 1 WHERE conversation_id = ? RETURNING last_seq`)
    .pluck();
  const insert = db.prepare(
    `INSERT INTO messages (${COLUMNS}) VALUES (@conversationId, @seq, @messageId, @senderUserId, @senderDeviceId, @clientMsgId, @kind, @text, @sentAt, @systemJson)`,
  );
  const readAscending = db.prepare<[string, bigint, bigint, number], MessageRow>(
    `SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`,
  );
  const readDescending = db.prepare<[string, bigint, bigint, number], MessageRow>(
    `SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
  );

  function appendOne(message: NewMessage): AppendResult {
    // Sees the rows written earlier in this same batch too, so a repeat within one flush resolves
    // to the first of them.
    const original = findByClientMsgId.get(message.senderUserId, message.clientMsgId);
    if (original) return { message: fromRow(original), duplicate: true };
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
    });
    return { message: stored, duplicate: false };
  }

  // Nested inside the batch's transaction this runs under a SAVEPOINT: an item that fails after its
  // seq was taken (a constraint on the insert) is undone alone, leaving no gap and the rest intact.
  const appendOneAtomically = db.transaction(appendOne);

  const appendBatch = db.transaction((items: readonly NewMessage[]): Outcome<AppendResult>[] =>
    items.map((item) => {
      try {
        return { ok: true, value: appendOneAtomically(item) };
      } catch (error) {
        // Only errors that belong to this item are confined to it. Anything else (I/O, disk full,
        // busy) may have ended the transaction; rethrowing fails the whole batch rather than let
        // the following items run outside it.
        if (!db.inTransaction || !isItemError(error)) throw error;
        return { ok: false, error };
      }
    }),
  );

  const group = createGroupCommit<NewMessage, AppendResult>({
    // IMMEDIATE takes the write lock up front, so contention waits on busy_timeout instead of
    // failing when the transaction upgrades from read to write.
    commit: (items) => appendBatch.immediate(items),
    maxBatch,
    closedError: () => new Error("the store is closed"),
  });

  const store = {
    append(message) {
      return group.submit(message);
    },
    async readRange(conversationId, options: ReadRangeOptions) {
      const { limit, newest = false } = options;
      if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      if (limit === 0) return [];
      const after = options.afterSeq ?? 0n;
      const before = options.beforeSeq ?? MAX_INT64;
      if (after >= before) return [];
      if (!newest) return readAscending.all(conversationId, after, before, limit).map(fromRow);
      return readDescending.all(conversationId, after, before, limit).map(fromRow).reverse();
    },
  } satisfies MessageStore;

  return { store, close: () => group.close() };
}

/** Appending to a conversation that does not exist: a bug in the caller, which checks membership first. */
export class UnknownConversationError extends Error {
  override readonly name = "UnknownConversationError";
  constructor(readonly conversationId: string) {
    super(`conversation "${conversationId}" does not exist`);
  }
}

function isItemError(error: unknown): boolean {
  if (error instanceof UnknownConversationError) return true;
  // A constraint names this row's values (a reused message id, a missing field); a TypeError or
  // RangeError is a value better-sqlite3 could not bind.
  if (error instanceof Database.SqliteError) return error.code.startsWith("SQLITE_CONSTRAINT");
  return error instanceof TypeError || error instanceof RangeError;
}
