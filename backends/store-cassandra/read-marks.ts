import type { CqlSession, Statement } from "./session.js";

export interface ReadMove {
  readonly userId: string;
  readonly seq: bigint;
  readonly at: Date;
}

export interface ReadMarkTables {
  readonly watermarks: string;
  readonly moves: string;
  /**
   * The conversation log, when moves may also be recorded there (entry 3, by the log sequencer: a
   * sender's move is then written in the same batch as the message).
   */
  readonly log?: string;
}

/**
 * Read watermarks and their history. A watermark is written with the seq as its write timestamp, so
 * of any two writes the higher seq wins whatever order they arrive in: monotone without a read or a
 * lightweight transaction, and a replayed move (a retried send healing a crash) can never move it back.
 */
export interface ReadMarks {
  /** Records the moves: history rows and watermarks. Moves that are not past the watermark leave it alone. */
  record(conversationId: string, moves: readonly ReadMove[]): Promise<void>;
  readSeq(conversationId: string, userId: string): Promise<bigint>;
  /** Every member's watermark in the conversation. */
  watermarks(conversationId: string): Promise<Map<string, { seq: bigint; at: Date }>>;
  /** The first recorded move of the user at or past `seq`. */
  firstMoveFrom(conversationId: string, userId: string, seq: bigint): Promise<ReadMove | undefined>;
}

/** A move's clustering key in the log partition: the seq, zero-padded so that text order is seq order. */
export const moveKey = (seq: bigint): string => seq.toString().padStart(20, "0");

/** The write timestamp of a value versioned by seq (timestamps must be positive, seqs start at 0). */
export const seqTimestamp = (seq: bigint): bigint => seq + 1n;

export function createReadMarks(session: CqlSession, tables: ReadMarkTables): ReadMarks {
  const insertMove = `INSERT INTO ${tables.moves} (conversation_id, user_id, seq, at) VALUES (?, ?, ?, ?)`;
  const putWatermark = `UPDATE ${tables.watermarks} USING TIMESTAMP ? SET seq = ?, at = ? WHERE conversation_id = ? AND user_id = ?`;
  const selectWatermark = `SELECT seq FROM ${tables.watermarks} WHERE conversation_id = ? AND user_id = ?`;
  const selectWatermarks = `SELECT user_id, seq, at FROM ${tables.watermarks} WHERE conversation_id = ?`;
  const selectFirstMove = `SELECT seq, at FROM ${tables.moves} WHERE conversation_id = ? AND user_id = ? AND seq >= ? LIMIT 1`;
  const selectFirstLoggedMove = tables.log
    ? `SELECT key_seq, sent_at FROM ${tables.log} WHERE conversation_id = ? AND entry = 3 AND seq = 0 AND user_id = ? AND client_key >= ? LIMIT 1`
    : undefined;

  return {
    async record(conversationId, moves) {
      if (moves.length === 0) return;
      const byUser = new Map<string, Map<bigint, ReadMove>>();
      for (const move of moves) {
        const own = byUser.get(move.userId) ?? new Map<bigint, ReadMove>();
        // The first move to a seq is the one that counts ("when did they first get there").
        if (!own.has(move.seq)) own.set(move.seq, move);
        byUser.set(move.userId, own);
      }
      const newest = [...byUser.values()].map((own) => [...own.values()].reduce((a, b) => (b.seq > a.seq ? b : a)));
      // History and watermarks in parallel (one round trip, not two): readersOf falls back to the
      // watermark's own seq and time should it ever find a watermark without its history row.
      await Promise.all([
        // One partition per (conversation, user): each user's history is one unlogged batch.
        ...[...byUser.values()].map((own) =>
          session.writePartition([...own.values()].map((move): Statement => ({ query: insertMove, params: [conversationId, move.userId, move.seq, move.at] }))),
        ),
        session.writePartition(
          newest.map((move): Statement => ({ query: putWatermark, params: [seqTimestamp(move.seq), move.seq, move.at, conversationId, move.userId] })),
        ),
      ]);
    },
    async readSeq(conversationId, userId) {
      const [row] = await session.read(selectWatermark, [conversationId, userId]);
      return (row?.seq as bigint | null | undefined) ?? 0n;
    },
    async watermarks(conversationId) {
      const rows = await session.readAll(selectWatermarks, [conversationId]);
      return new Map(rows.map((row) => [row.user_id as string, { seq: row.seq as bigint, at: row.at as Date }]));
    },
    async firstMoveFrom(conversationId, userId, seq) {
      const [[row], [logged]] = await Promise.all([
        session.read(selectFirstMove, [conversationId, userId, seq]),
        selectFirstLoggedMove ? session.read(selectFirstLoggedMove, [conversationId, userId, moveKey(seq)]) : Promise.resolve([]),
      ]);
      const fromTable = row && { userId, seq: row.seq as bigint, at: row.at as Date };
      const fromLog = logged && { userId, seq: logged.key_seq as bigint, at: logged.sent_at as Date };
      if (!fromTable || !fromLog) return fromTable ?? fromLog;
      return fromLog.seq < fromTable.seq ? fromLog : fromTable;
    },
  };
}
