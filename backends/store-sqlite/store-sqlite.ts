import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { ChatStore, NewMessage } from "../../services/ports/index.js";
import { createSqliteAccounts } from "./accounts.js";
import { startAppendThread, type AppendThread } from "./append-thread.js";
import { openConnection } from "./connection.js";
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
  /** Most writes (appends, group changes) committed by one group-commit transaction, on each writer. */
  readonly maxBatch?: number;
  /**
   * Users' sends are committed on a thread of their own (default; a file store only). False keeps
   * them on the main thread's writer.
   */
  readonly appendThread?: boolean;
  /** Told if the append thread stops by itself; sends then run on the main thread. */
  readonly onAppendThreadStopped?: (error: Error) => void;
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

/**
 * The embedded engine: one SQLite file, durable before anything is acknowledged. The gateway thread
 * has one connection; users' sends commit on the append thread's, checkpoints run on a third.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { path, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS, maxBatch = DEFAULT_MAX_BATCH } = options;
  const inMemory = path === ":memory:";
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = openConnection(path, busyTimeoutMs);
  try {
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }

  // The writes here that take a seq (group creation, membership changes, and sends when there is no
  // append thread) go through one writer, so they are sequenced in call order and share their
  // batch's fsync.
  const writer = createSqliteWriter(db, maxBatch);
  const log = createSqliteLog(db);
  const appendHere = (message: NewMessage) => writer.submit(() => log.appendOnce(message));
  let appendThread: AppendThread | undefined;
  let checkpointer: Checkpointer | undefined;
  if (!inMemory) {
    db.pragma("wal_autocheckpoint = 0");
    checkpointer = startCheckpointer({
      path,
      intervalMs: CHECKPOINT_INTERVAL_MS,
      busyTimeoutMs,
      onFailure: () => {
        if (closed) return;
        db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES}`);
        appendThread?.enableAutoCheckpoint(SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES);
      },
    });
    if (options.appendThread !== false) {
      appendThread = startAppendThread({
        settings: { path, busyTimeoutMs, maxBatch, autoCheckpoint: false },
        fallback: appendHere,
        onStopped: (error) => options.onAppendThreadStopped?.(error),
      });
    }
  }
  let closed = false;

  return {
    accounts: createSqliteAccounts(db),
    conversations: createSqliteConversations(db, log, writer),
    messages: createSqliteMessages(db, appendThread ? (message) => appendThread.append(message) : appendHere),
    receipts: createSqliteReceipts(db, log),
    async close() {
      if (closed) return;
      closed = true;
      await appendThread?.close();
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
