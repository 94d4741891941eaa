import type { Database } from "better-sqlite3";
import type { AppendResult, MessageStore, NewMessage, ReadRangeOptions } from "../../services/ports/index.js";
import { MESSAGE_COLUMNS, messageFromRow, type MessageRow } from "./log.js";

export { UnknownConversationError } from "./log.js";

// Exclusive upper bound when the caller gives none: the largest value an INTEGER column can hold.
const MAX_INT64 = 2n ** 63n - 1n;

/** Expects `db.defaultSafeIntegers(true)`: seqs are read as bigint. */
export function createSqliteMessages(db: Database, append: (message: NewMessage) => Promise<AppendResult>): MessageStore {
  const readAscending = db.prepare<[string, bigint, bigint, number], MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`,
  );
  const readDescending = db.prepare<[string, bigint, bigint, number], MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
  );

  return {
    append,
    async readRange(conversationId, options: ReadRangeOptions) {
      const { limit, newest = false } = options;
      if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      if (limit === 0) return [];
      const after = options.afterSeq ?? 0n;
      const before = options.beforeSeq ?? MAX_INT64;
      if (after >= before) return [];
      if (!newest) return readAscending.all(conversationId, after, before, limit).map(messageFromRow);
      return readDescending.all(conversationId, after, before, limit).map(messageFromRow).reverse();
    },
  } satisfies MessageStore;
}
