import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type {
  DeadLetter,
  PushJob,
  PushJobKind,
  PushJobQueue,
  PushProviderName,
  PushStore,
  PushTarget,
  PushTargetStore,
} from "../../services/ports/index.js";
import { migrate, type Migration } from "../store-sqlite/schema.js";

// Its own file beside the chat store: push state has its own lifecycle (jobs come and go many times
// per message) and must not add write load to the message log's group commit.
//
// A job row is never deleted when it is sent: `state` moves pending -> sent | cancelled | dead, and
// sent rows are what `withdraw` looks at to know which devices show a notification that must be
// cleared. `due_at` doubles as the lease: a claim pushes it forward, so a job whose sender died is
// due again when the lease runs out.
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS push_targets (
  device_id  TEXT    NOT NULL PRIMARY KEY,
  user_id    TEXT    NOT NULL,
  provider   TEXT    NOT NULL,
  endpoint   TEXT    NOT NULL,
  p256dh     TEXT,
  auth       TEXT,
  created_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE INDEX IF NOT EXISTS push_targets_by_user ON push_targets (user_id);

CREATE TABLE IF NOT EXISTS push_muted (
  user_id         TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID, STRICT;

CREATE TABLE IF NOT EXISTS push_previews (
  user_id TEXT    NOT NULL PRIMARY KEY,
  enabled INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE IF NOT EXISTS push_jobs (
  job_id          TEXT    NOT NULL PRIMARY KEY,
  kind            TEXT    NOT NULL,
  user_id         TEXT    NOT NULL,
  device_id       TEXT    NOT NULL,
  conversation_id TEXT    NOT NULL,
  seq             INTEGER NOT NULL,
  message_id      TEXT    NOT NULL,
  sender_user_id  TEXT    NOT NULL,
  preview         TEXT,
  created_at      INTEGER NOT NULL,
  state           TEXT    NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  due_at          INTEGER NOT NULL,
  last_error      TEXT,
  finished_at     INTEGER,
  cleared         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID, STRICT;
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (state, due_at);
CREATE INDEX IF NOT EXISTS push_jobs_by_conversation ON push_jobs (user_id, conversation_id, state, seq);
CREATE INDEX IF NOT EXISTS push_jobs_by_device ON push_jobs (device_id, state);
`;

export const PUSH_MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "push targets, mutes, previews, jobs", up: (db) => db.exec(SCHEMA_V1) },
];

interface TargetRow {
  device_id: string;
  user_id: string;
  provider: string;
  endpoint: string;
  p256dh: string | null;
  auth: string | null;
  created_at: bigint;
}

interface JobRow {
  job_id: string;
  kind: string;
  user_id: string;
  device_id: string;
  conversation_id: string;
  seq: bigint;
  message_id: string;
  sender_user_id: string;
  preview: string | null;
  created_at: bigint;
  attempts: bigint;
  last_error: string | null;
  finished_at: bigint | null;
}

const JOB_COLUMNS = `job_id, kind, user_id, device_id, conversation_id, seq, message_id, sender_user_id, preview, created_at, attempts, last_error, finished_at`;

function targetFromRow(row: TargetRow): PushTarget {
  const target = {
    userId: row.user_id,
    deviceId: row.device_id,
    provider: row.provider as PushProviderName,
    endpoint: row.endpoint,
    createdAt: new Date(Number(row.created_at)),
  };
  return row.p256dh !== null && row.auth !== null ? { ...target, p256dh: row.p256dh, auth: row.auth } : target;
}

function jobFromRow(row: JobRow): PushJob {
  const job = {
    jobId: row.job_id,
    kind: row.kind as PushJobKind,
    userId: row.user_id,
    deviceId: row.device_id,
    conversationId: row.conversation_id,
    seq: row.seq,
    messageId: row.message_id,
    senderUserId: row.sender_user_id,
    createdAt: new Date(Number(row.created_at)),
    attempts: Number(row.attempts),
  };
  return row.preview === null ? job : { ...job, preview: row.preview };
}

export interface SqlitePushStoreOptions {
  /** The database file; its directory is created if missing. `:memory:` gives a throwaway store. */
  readonly path: string;
}

/** The embedded push engine: targets, choices and the job queue in one SQLite file. */
export function createSqlitePushStore(options: SqlitePushStoreOptions): PushStore {
  const { path } = options;
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 5000");
    db.pragma("journal_mode = WAL");
    // A queued push must survive power loss as the message it announces does.
    db.pragma("synchronous = FULL");
    db.defaultSafeIntegers(true);
    migrate(db, PUSH_MIGRATIONS);
  } catch (error) {
    db.close();
    throw error;
  }
  let closed = false;
  return {
    targets: createTargets(db),
    jobs: createJobs(db),
    async close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  } satisfies PushStore;
}

function createTargets(db: Database.Database): PushTargetStore {
  const put = db.prepare(
    `INSERT INTO push_targets (device_id, user_id, provider, endpoint, p256dh, auth, created_at)
     VALUES (@deviceId, @userId, @provider, @endpoint, @p256dh, @auth, @createdAt)
     ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, provider = excluded.provider, endpoint = excluded.endpoint,
       p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at`,
  );
  const remove = db.prepare<[string]>(`DELETE FROM push_targets WHERE device_id = ?`);
  const get = db.prepare<[string], TargetRow>(`SELECT * FROM push_targets WHERE device_id = ?`);
  const ofUsers = db.prepare<[string], TargetRow>(
    `SELECT * FROM push_targets WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id, device_id`,
  );
  const mute = db.prepare<[string, string]>(`INSERT OR IGNORE INTO push_muted (user_id, conversation_id) VALUES (?, ?)`);
  const unmute = db.prepare<[string, string]>(`DELETE FROM push_muted WHERE user_id = ? AND conversation_id = ?`);
  const mutedAmong = db
    .prepare<[string, string], string>(`SELECT user_id FROM push_muted WHERE conversation_id = ? AND user_id IN (SELECT value FROM json_each(?))`)
    .pluck();
  const listMuted = db.prepare<[string], string>(`SELECT conversation_id FROM push_muted WHERE user_id = ? ORDER BY conversation_id`).pluck();
  const setPreviews = db.prepare<[string, number]>(
    `INSERT INTO push_previews (user_id, enabled) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET enabled = excluded.enabled`,
  );
  const previewsAmong = db
    .prepare<[string], string>(`SELECT user_id FROM push_previews WHERE enabled = 1 AND user_id IN (SELECT value FROM json_each(?))`)
    .pluck();
  // Most users have no push target: every stored message asks about its recipients, and this answers
  // for them without a query. The push file belongs to this gateway alone, so the counts stay exact.
  const targetCounts = new Map<string, number>(
    db
      .prepare<[], { user_id: string; count: bigint | number }>(`SELECT user_id, COUNT(*) AS count FROM push_targets GROUP BY user_id`)
      .all()
      .map((row) => [row.user_id, Number(row.count)]),
  );
  const countTarget = (userId: string, by: number) => {
    const count = (targetCounts.get(userId) ?? 0) + by;
    if (count > 0) targetCounts.set(userId, count);
    else targetCounts.delete(userId);
  };
  return {
    async putTarget(target) {
      const previous = get.get(target.deviceId);
      put.run({
        deviceId: target.deviceId,
        userId: target.userId,
        provider: target.provider,
        endpoint: target.endpoint,
        p256dh: target.p256dh ?? null,
        auth: target.auth ?? null,
        createdAt: target.createdAt.getTime(),
      });
      if (previous) countTarget(previous.user_id, -1);
      countTarget(target.userId, 1);
    },
    async removeTarget(deviceId) {
      const previous = get.get(deviceId);
      if (remove.run(deviceId).changes > 0 && previous) countTarget(previous.user_id, -1);
    },
    async getTarget(deviceId) {
      const row = get.get(deviceId);
      return row && targetFromRow(row);
    },
    async targetsOf(userIds) {
      const owners = userIds.filter((userId) => targetCounts.has(userId));
      if (owners.length === 0) return [];
      return ofUsers.all(JSON.stringify(owners)).map(targetFromRow);
    },
    async setMuted(userId, conversationId, muted) {
      if (muted) mute.run(userId, conversationId);
      else unmute.run(userId, conversationId);
    },
    async mutedAmong(conversationId, userIds) {
      if (userIds.length === 0) return new Set();
      return new Set(mutedAmong.all(conversationId, JSON.stringify(userIds)));
    },
    async listMuted(userId) {
      return listMuted.all(userId);
    },
    async setPreviews(userId, enabled) {
      setPreviews.run(userId, enabled ? 1 : 0);
    },
    async previewsAmong(userIds) {
      if (userIds.length === 0) return new Set();
      return new Set(previewsAmong.all(JSON.stringify(userIds)));
    },
  } satisfies PushTargetStore;
}

function createJobs(db: Database.Database): PushJobQueue {
  // OR IGNORE: enqueueing the same job id twice (a retried fan-out) queues it once.
  const insert = db.prepare(
    `INSERT OR IGNORE INTO push_jobs (job_id, kind, user_id, device_id, conversation_id, seq, message_id, sender_user_id, preview, created_at, state, due_at)
     VALUES (@jobId, @kind, @userId, @deviceId, @conversationId, @seq, @messageId, @senderUserId, @preview, @createdAt, 'pending', @createdAt)`,
  );
  const due = db.prepare<[number, number], JobRow>(
    `SELECT ${JOB_COLUMNS} FROM push_jobs WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, job_id LIMIT ?`,
  );
  const lease = db.prepare<[number, string]>(`UPDATE push_jobs SET attempts = attempts + 1, due_at = ? WHERE job_id = ?`);
  // A job cancelled while its try was in flight was shown all the same: it counts as sent, so the
  // next read clears it.
  const complete = db.prepare<[number, string]>(
    `UPDATE push_jobs SET state = 'sent', finished_at = ?, last_error = NULL WHERE job_id = ? AND state IN ('pending', 'cancelled')`,
  );
  // Only a pending job moves: a withdrawn one stays withdrawn whatever its try reported.
  const retry = db.prepare<[number, string, string]>(`UPDATE push_jobs SET due_at = ?, last_error = ? WHERE job_id = ? AND state = 'pending'`);
  const dead = db.prepare<[string, number, string]>(
    `UPDATE push_jobs SET state = 'dead', last_error = ?, finished_at = ? WHERE job_id = ? AND state = 'pending'`,
  );
  const cancel = db.prepare<[number, string, string, bigint]>(
    `UPDATE push_jobs SET state = 'cancelled', finished_at = ?
      WHERE user_id = ? AND conversation_id = ? AND state = 'pending' AND kind = 'message' AND seq <= ?`,
  );
  const shown = db
    .prepare<[string, string, bigint], string>(
      `SELECT DISTINCT device_id FROM push_jobs
        WHERE user_id = ? AND conversation_id = ? AND state = 'sent' AND kind = 'message' AND seq <= ? AND cleared = 0
        ORDER BY device_id`,
    )
    .pluck();
  const markCleared = db.prepare<[string, string, bigint]>(
    `UPDATE push_jobs SET cleared = 1 WHERE user_id = ? AND conversation_id = ? AND state = 'sent' AND kind = 'message' AND seq <= ? AND cleared = 0`,
  );
  const dropDevice = db.prepare<[number, string]>(`UPDATE push_jobs SET state = 'cancelled', finished_at = ? WHERE device_id = ? AND state = 'pending'`);
  const deadLetters = db.prepare<[number], JobRow>(
    `SELECT ${JOB_COLUMNS} FROM push_jobs WHERE state = 'dead' ORDER BY finished_at, job_id LIMIT ?`,
  );
  const pending = db.prepare<[], bigint>(`SELECT count(*) FROM push_jobs WHERE state = 'pending'`).pluck();
  const prune = db.prepare<[number]>(`DELETE FROM push_jobs WHERE state IN ('sent', 'cancelled') AND finished_at < ?`);

  const enqueueAll = db.transaction((jobs: readonly Parameters<PushJobQueue["enqueue"]>[0][number][]) => {
    for (const job of jobs) {
      insert.run({
        jobId: job.jobId,
        kind: job.kind,
        userId: job.userId,
        deviceId: job.deviceId,
        conversationId: job.conversationId,
        seq: job.seq,
        messageId: job.messageId,
        senderUserId: job.senderUserId,
        preview: job.preview ?? null,
        createdAt: job.createdAt.getTime(),
      });
    }
  });
  const claim = db.transaction((now: number, limit: number, leaseMs: number): PushJob[] => {
    const rows = due.all(now, limit);
    for (const row of rows) lease.run(now + leaseMs, row.job_id);
    return rows.map((row) => jobFromRow({ ...row, attempts: row.attempts + 1n }));
  });
  const withdraw = db.transaction((userId: string, conversationId: string, seq: bigint, at: number) => {
    const { changes } = cancel.run(at, userId, conversationId, seq);
    const shownOn = shown.all(userId, conversationId, seq);
    if (shownOn.length > 0) markCleared.run(userId, conversationId, seq);
    return { cancelled: changes, shownOn };
  });

  return {
    async enqueue(jobs) {
      if (jobs.length > 0) enqueueAll.immediate(jobs);
    },
    async claimDue(now, limit, leaseMs) {
      return claim.immediate(now.getTime(), limit, leaseMs);
    },
    async complete(jobId, at) {
      complete.run(at.getTime(), jobId);
    },
    async retry(jobId, at, error) {
      retry.run(at.getTime(), error, jobId);
    },
    async deadLetter(jobId, error, at) {
      dead.run(error, at.getTime(), jobId);
    },
    async withdraw(userId, conversationId, seq, at) {
      return withdraw.immediate(userId, conversationId, seq, at.getTime());
    },
    async dropDevice(deviceId, at) {
      return dropDevice.run(at.getTime(), deviceId).changes;
    },
    async deadLetters(limit): Promise<DeadLetter[]> {
      return deadLetters.all(limit).map((row) => ({ job: jobFromRow(row), error: row.last_error ?? "", at: new Date(Number(row.finished_at ?? 0n)) }));
    },
    async pendingCount() {
      return Number(pending.get());
    },
    async prune(before) {
      return prune.run(before.getTime()).changes;
    },
  } satisfies PushJobQueue;
}
