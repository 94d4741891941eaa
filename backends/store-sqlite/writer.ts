import { closeSync, fsync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { GroupFullError } from "../../services/ports/index.js";
import { createGroupCommit, type Outcome } from "./group-commit.js";
import { UnknownConversationError } from "./log.js";

/**
 * An append costs tens of µs inside the transaction, which holds the event loop: 250 keeps a flush
 * near 10 ms (no device waits long for a frame), and under load one fsync still covers thousands a
 * second. The rest goes into the next batch, right after this one's fsync.
 */
export const DEFAULT_MAX_BATCH = 250;

/**
 * The one queue every write that takes a seq goes through (appends, group creation, membership
 * changes), so they are sequenced in call order and share the fsync of their batch.
 */
export interface SqliteWriter {
  /**
   * Runs `write` inside the next group-commit transaction, under its own SAVEPOINT, and resolves with
   * what it returned once that transaction has committed. If `write` throws an error of its own (see
   * isItemError) only its changes are undone and only its promise rejects.
   */
  submit<T>(write: () => T): Promise<T>;
  /** Commits what is queued; later submits reject. */
  close(): void;
}

type Write = () => unknown;

export function createSqliteWriter(db: Database.Database, maxBatch = DEFAULT_MAX_BATCH): SqliteWriter {
  // Nested inside the batch's transaction this runs under a SAVEPOINT: an item that fails after its
  // seq was taken (a constraint on the insert, a group over its cap) is undone alone, leaving no gap
  // and the rest intact.
  const runAtomically = db.transaction((write: Write) => write());

  const commitBatch = db.transaction((writes: readonly Write[]): Outcome<unknown>[] =>
    writes.map((write) => {
      try {
        return { ok: true, value: runAtomically(write) };
      } catch (error) {
        // Only errors that belong to this item are confined to it. Anything else (I/O, disk full,
        // busy) may have ended the transaction; rethrowing fails the whole batch rather than let
        // the following items run outside it.
        if (!db.inTransaction || !isItemError(error)) throw error;
        return { ok: false, error };
      }
    }),
  );

  // The batch commits with synchronous = NORMAL (no fsync inside the commit, which would hold the
  // event loop for it) and its items settle after an fsync of the WAL file run on libuv's thread
  // pool: the same durability as FULL for what is acknowledged, and the event loop serves streams
  // meanwhile. The connection stays FULL for every other write.
  const wal = db.memory ? undefined : walSyncer(`${db.name}-wal`);
  const commitImmediate = (writes: readonly Write[]) => commitBatch.immediate(writes);
  const group = createGroupCommit<Write, unknown>({
    // IMMEDIATE takes the write lock up front, so contention waits on busy_timeout instead of
    // failing when the transaction upgrades from read to write.
    commit: wal
      ? (writes) => {
          db.pragma("synchronous = NORMAL");
          try {
            return commitImmediate(writes);
          } finally {
            db.pragma("synchronous = FULL");
          }
        }
      : commitImmediate,
    maxBatch,
    closedError: () => new Error("the store is closed"),
    afterCommit: wal?.sync,
  });

  return {
    submit<T>(write: () => T) {
      return group.submit(write) as Promise<T>;
    },
    close() {
      group.close();
      wal?.close();
    },
  };
}

function isItemError(error: unknown): boolean {
  if (error instanceof UnknownConversationError || error instanceof GroupFullError) return true;
  // A constraint names this row's values (a reused message id, a missing field); a TypeError or
  // RangeError is a value better-sqlite3 could not bind, or an argument the engine refused.
  if (error instanceof Database.SqliteError) return error.code.startsWith("SQLITE_CONSTRAINT");
  return error instanceof TypeError || error instanceof RangeError;
}

/**
 * fsyncs the WAL file. Opened at the first sync, after a commit, when the file exists; SQLite keeps
 * the same file (truncating, never replacing it) while a connection is open. Closed once the syncs
 * still running when the writer closes are done: left open, it would keep a deleted WAL's space.
 */
function walSyncer(walPath: string): { sync(): Promise<void>; close(): void } {
  let fd: number | undefined;
  let running = 0;
  let closing = false;
  const release = () => {
    if (!closing || running > 0 || fd === undefined) return;
    closeSync(fd);
    fd = undefined;
  };
  return {
    sync: () =>
      new Promise<void>((resolve, reject) => {
        try {
          fd ??= openSync(walPath, "r+");
        } catch (error) {
          return reject(error);
        }
        running++;
        fsync(fd, (error) => {
          running--;
          release();
          if (error) reject(error);
          else resolve();
        });
      }),
    close() {
      closing = true;
      release();
    },
  };
}
