import Database from "better-sqlite3";

// After a checkpoint the WAL file is truncated back to this instead of keeping the size of the
// largest burst it ever held.
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Opens a connection with the settings every connection of the store runs with: the gateway's own and
 * the append thread's. Closes it again if a setting is refused.
 */
export function openConnection(path: string, busyTimeoutMs: number): Database.Database {
  const inMemory = path === ":memory:";
  const db = new Database(path);
  try {
    // First, so that switching the journal mode below already waits for other connections.
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    const journalMode = String(db.pragma("journal_mode = WAL", { simple: true }));
    if (journalMode !== "wal" && !inMemory) throw new Error(`SQLite refused WAL mode for ${path} (journal_mode is ${journalMode})`);
    // FULL: in WAL mode NORMAL may lose the last commits on power loss, and an ack promises the
    // message survives. The writer's batches commit with NORMAL and fsync the WAL off the event loop
    // before anything in them is acknowledged (writer.ts).
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
    // Seqs are uint64 on the wire; reading every integer as bigint means none is ever rounded, and
    // the row mappers turn the timestamps back into numbers.
    db.defaultSafeIntegers(true);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
