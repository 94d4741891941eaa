import type { Database } from "better-sqlite3";
import type { DeliveryCursor, ReadMark, ReceiptStore, Watermark } from "../../services/ports/index.js";
import type { SqliteLog } from "./log.js";

interface ReadMarkRow {
  user_id: string;
  seq: bigint;
  at: bigint;
}

interface CursorRow {
  user_id: string;
  device_id: string;
  seq: bigint;
  at: bigint;
}

/**
 * Receipts are single-row writes, each its own small IMMEDIATE transaction straight on the
 * connection: no seq is taken, so they need not queue behind the group commit. With
 * synchronous=FULL each commit is durable when it returns, before the promise resolves.
 * Expects `db.defaultSafeIntegers(true)`.
 */
export function createSqliteReceipts(db: Database, log: SqliteLog): ReceiptStore {
  // The first move of each member's watermark to S or past it: its seq and its time. SQLite takes
  // the bare columns of a MIN() aggregate from the row holding the minimum, so `at` belongs to that
  // move (and equals MIN(at) whenever times grow with the watermark, as they do).
  const readers = db.prepare<[string, bigint], ReadMarkRow>(
    `SELECT user_id, MIN(seq) AS seq, at FROM read_marks WHERE conversation_id = ? AND seq >= ? GROUP BY user_id ORDER BY user_id`,
  );
  const cursor = db.prepare<[string, string], { seq: bigint }>(`SELECT seq FROM delivery_cursors WHERE conversation_id = ? AND device_id = ?`);
  // Forwards only: a stale or repeated cursor changes nothing (changes = 0).
  const upsertCursor = db.prepare<[string, string, string, bigint, number]>(
    `INSERT INTO delivery_cursors (conversation_id, device_id, user_id, seq, at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (conversation_id, device_id) DO UPDATE SET seq = excluded.seq, at = excluded.at
      WHERE excluded.seq > delivery_cursors.seq`,
  );
  const cursors = db.prepare<[string], CursorRow>(
    `SELECT user_id, device_id, seq, at FROM delivery_cursors WHERE conversation_id = ? ORDER BY user_id, device_id`,
  );
  const senders = db
    .prepare<[string, bigint, bigint], string>(
      `SELECT DISTINCT sender_user_id FROM messages
        WHERE conversation_id = ? AND seq > ? AND seq <= ? AND kind = 'text'
        ORDER BY sender_user_id`,
    )
    .pluck();

  const markRead = db.transaction((conversationId: string, userId: string, seq: bigint, at: number): Watermark => {
    if (log.moveReadMark(conversationId, userId, seq, at)) return { seq, moved: true };
    return { seq: log.readSeq(conversationId, userId), moved: false };
  });

  const markDelivered = db.transaction((conversationId: string, userId: string, deviceId: string, seq: bigint, at: number): Watermark => {
    // No row counts as 0: delivering "up to 0" stores nothing.
    if (seq > 0n && upsertCursor.run(conversationId, deviceId, userId, seq, at).changes > 0) return { seq, moved: true };
    return { seq: cursor.get(conversationId, deviceId)?.seq ?? 0n, moved: false };
  });

  return {
    async markRead(conversationId, userId, seq, at) {
      return markRead.immediate(conversationId, userId, seq, at.getTime());
    },
    async readSeq(conversationId, userId) {
      return log.readSeq(conversationId, userId);
    },
    async readersOf(conversationId, seq): Promise<ReadMark[]> {
      return readers.all(conversationId, seq).map((row) => ({ userId: row.user_id, seq: row.seq, at: new Date(Number(row.at)) }));
    },
    async markDelivered(conversationId, userId, deviceId, seq, at) {
      return markDelivered.immediate(conversationId, userId, deviceId, seq, at.getTime());
    },
    async deliveryCursors(conversationId): Promise<DeliveryCursor[]> {
      return cursors
        .all(conversationId)
        .map((row) => ({ userId: row.user_id, deviceId: row.device_id, seq: row.seq, at: new Date(Number(row.at)) }));
    },
    async sendersBetween(conversationId, afterSeq, upToSeq) {
      if (afterSeq >= upToSeq) return [];
      return senders.all(conversationId, afterSeq, upToSeq);
    },
  } satisfies ReceiptStore;
}
