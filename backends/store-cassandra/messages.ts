import type { MessageStore, ReadRangeOptions } from "../../services/ports/index.js";
import { logQueries, messageFromRow, type LogTables } from "./conversation-log.js";
import type { Sequencer } from "./sequencer.js";
import type { CqlSession } from "./session.js";

// Exclusive upper bound when the caller gives none: the largest value a bigint column holds.
const MAX_INT64 = 2n ** 63n - 1n;

export function createCassandraMessages(session: CqlSession, tables: LogTables, sequencer: Sequencer): MessageStore {
  const queries = logQueries(tables);
  return {
    append(message) {
      return sequencer.append(message);
    },
    async readRange(conversationId, options: ReadRangeOptions) {
      const { limit, newest = false } = options;
      if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      if (limit === 0) return [];
      const after = options.afterSeq ?? 0n;
      const before = options.beforeSeq ?? MAX_INT64;
      if (after >= before) return [];
      // One slice of the conversation's partition, newest-first when asked, paged by the driver.
      const rows = await session.readAll(newest ? queries.rangeDescending : queries.rangeAscending, [conversationId, after, before, limit], { limit });
      const messages = rows.map(messageFromRow);
      return newest ? messages.reverse() : messages;
    },
  } satisfies MessageStore;
}
