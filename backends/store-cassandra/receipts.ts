import type { DeliveryCursor, ReadMark, ReceiptStore } from "../../services/ports/index.js";
import { logQueries, type LogTables } from "./conversation-log.js";
import { seqTimestamp, type ReadMarks } from "./read-marks.js";
import type { CqlSession } from "./session.js";

export interface ReceiptTables extends LogTables {
  readonly cursors: string;
}

const byUser = <T extends { userId: string }>(a: T, b: T) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);

/**
 * Receipts never take a seq, so they stay out of the conversation's Paxos partition: a busy group's
 * read marks do not compete with its sends. Watermarks and delivery cursors are monotone through
 * their write timestamps (the seq), so concurrent moves converge on the highest. `moved` is decided
 * by reading first: two concurrent moves of the same member to the same seq may both report it.
 */
export function createCassandraReceipts(session: CqlSession, tables: ReceiptTables, readMarks: ReadMarks): ReceiptStore {
  const queries = logQueries(tables);
  const cursor = `SELECT seq FROM ${tables.cursors} WHERE conversation_id = ? AND device_id = ?`;
  const putCursor = `UPDATE ${tables.cursors} USING TIMESTAMP ? SET user_id = ?, seq = ?, at = ? WHERE conversation_id = ? AND device_id = ?`;
  const cursors = `SELECT user_id, device_id, seq, at FROM ${tables.cursors} WHERE conversation_id = ?`;

  return {
    async markRead(conversationId, userId, seq, at) {
      const current = await readMarks.readSeq(conversationId, userId);
      if (seq <= current) return { seq: current, moved: false };
      await readMarks.record(conversationId, [{ userId, seq, at }]);
      return { seq, moved: true };
    },
    readSeq(conversationId, userId) {
      return readMarks.readSeq(conversationId, userId);
    },
    async readersOf(conversationId, seq): Promise<ReadMark[]> {
      const watermarks = await readMarks.watermarks(conversationId);
      const readers = [...watermarks].filter(([, mark]) => mark.seq >= seq);
      const marks = await Promise.all(
        readers.map(async ([userId, mark]): Promise<ReadMark> => (await readMarks.firstMoveFrom(conversationId, userId, seq)) ?? { userId, seq: mark.seq, at: mark.at }),
      );
      return marks.sort(byUser);
    },
    async markDelivered(conversationId, userId, deviceId, seq, at) {
      const [row] = await session.read(cursor, [conversationId, deviceId]);
      const current = (row?.seq as bigint | null | undefined) ?? 0n;
      // No row counts as 0: delivering "up to 0" stores nothing.
      if (seq <= current) return { seq: current, moved: false };
      await session.write(putCursor, [seqTimestamp(seq), userId, seq, at, conversationId, deviceId]);
      return { seq, moved: true };
    },
    async deliveryCursors(conversationId): Promise<DeliveryCursor[]> {
      const rows = await session.readAll(cursors, [conversationId]);
      return rows
        .map((row) => ({ userId: row.user_id as string, deviceId: row.device_id as string, seq: row.seq as bigint, at: row.at as Date }))
        .sort((a, b) => byUser(a, b) || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    },
    async sendersBetween(conversationId, afterSeq, upToSeq) {
      if (afterSeq >= upToSeq) return [];
      const rows = await session.readAll(queries.senders, [conversationId, afterSeq, upToSeq]);
      return [...new Set(rows.filter((row) => row.kind === "text").map((row) => row.sender_user_id as string))].sort();
    },
  } satisfies ReceiptStore;
}
