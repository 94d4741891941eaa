import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { ChatStore } from "../../services/ports/index.js";
import { createSqliteAccounts } from "./accounts.js";
import { createSqliteConversations } from "./conversations.js";
import { createSqliteLog } from "./log.js";
import { createSqliteMessages } from "./messages.js";
import { createSqliteReceipts } from "./receipts.js";
import { startCheckpointer, type Checkpointer } from "./checkpointer.js";
import { migrate } from "./schema.js";
import { createSqliteWriter, DEFAULT_MAX_BATCH } from "./writer.js";

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. `:memory:` gives a throwaway store. */
  readonly path: string;
  /** How long a write waits for another connection's lock before failing. */
  readonly busyTimeoutMs?: number;
  /** Most writes (appends, group changes) committed by one group-commit transaction. */
  readonly maxBatch?: number;
}

/** What the connection actually runs with, read back from SQLite (for tests and diagnostics). */
export interface SqliteSettings {
  readonly path: string;
  readonly journalMode: string;
  /** 2 is FULL. */
  readonly synchronous: number;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
  readonly schemaVersion: number;
}

export interface SqliteStore extends ChatStore {
  settings(): SqliteSettings;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const CHECKPOINT_INTERVAL_MS = 200;
const SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;
// After a checkpoint the WAL file is truncated back to this instead of keeping the size of the
// largest burst it ever held.
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** The embedded engine: one SQLite file, one connection, durable before anything is acknowledged. */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { path, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, maxBatch = DEFAULT_MAX_BATCH } = options;
  const inMemory = path === ":memory:";
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
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
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }

  // Every write that takes a seq (appends, group creation, membership changes) goes through the
  // one writer, so they are sequenced in call order and share their batch's fsync.
  const writer = createSqliteWriter(db, maxBatch);
  let checkpointer: Checkpointer | undefined;
  if (!inMemory) {
    db.pragma("wal_autocheckpoint = 0");
    checkpointer = startCheckpointer({
      path,
      intervalMs: CHECKPOINT_INTERVAL_MS,
      busyTimeoutMs,
      onFailure: () => {
        if (!closed) db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES}`);
      },
    });
  }
  const log = createSqliteLog(db);
  let closed = false;

  return {
    accounts: createSqliteAccounts(db),
    conversations: createSqliteConversations(db, log, writer),
    messages: createSqliteMessages(db, log, writer),
    receipts: createSqliteReceipts(db, log),
    async close() {
      if (closed) return;
      closed = true;
      writer.close();
      await checkpointer?.stop();
      db.close();
    },
    settings() {
      return {
        path,
        journalMode: String(db.pragma("journal_mode", { simple: true })),
        synchronous: Number(db.pragma("synchronous", { simple: true })),
        foreignKeys: Number(db.pragma("foreign_keys", { simple: true })) === 1,
        busyTimeoutMs: Number(db.pragma("busy_timeout", { simple: true })),
        schemaVersion: Number(db.pragma("user_version", { simple: true })),
      };
    },
  } satisfies SqliteStore;
}
