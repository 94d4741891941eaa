import { randomUUID } from "node:crypto";
import type { CqlSession } from "./session.js";

export interface Migration {
  readonly version: number;
  readonly description: string;
  /** Idempotent statements (IF NOT EXISTS), so re-running a migration a crashed process started is harmless. */
  readonly statements: (keyspace: string) => readonly string[];
}

/** `{ class: "SimpleStrategy", replication_factor: 1 }` or `{ class: "NetworkTopologyStrategy", dc1: 3 }`. */
export type Replication = Readonly<Record<string, string | number>> & { readonly class: string };

// The conversation log. One partition per conversation holds everything that must change atomically
// with a seq: the conversation itself (static columns), its messages (entry 0, clustered by seq), the
// idempotency keys (entry 1, clustered by user_id = sender and client_key = clientMsgId) and the
// members (entry 2, clustered by user_id). A conditional batch on one partition is one Paxos round, so
// "take seq N, store message N, claim its key, apply the membership change" is all or nothing; see
// sequencer.ts. `entry` comes first in the clustering key so messages stay contiguous and ordered by
// seq, and a page of history is one slice. Unused clustering columns of a row hold 0 or ''.
//
// memberships_by_user is the per-user index (the inbox, listGroups, listHeads): derived from the
// member rows, written after the conditional batch, and with write timestamps taken from the seq of
// the change (never the clock), so replays and races can only converge on the newest state.
// read_watermarks and delivery_cursors use the same trick: the timestamp is the seq, so a stale or
// late write can never move them backwards. Nothing may write these three tables with a clock timestamp.
const SCHEMA_V1 = (ks: string): string[] => [
  `CREATE TABLE IF NOT EXISTS ${ks}.users (
     user_id text PRIMARY KEY,
     username text,
     display_name text,
     password_hash text,
     created_at timestamp)`,
  // The uniqueness of usernames: claimed with INSERT ... IF NOT EXISTS before the user row is
  // written. It carries the whole user, so a login is one read.
  `CREATE TABLE IF NOT EXISTS ${ks}.users_by_username (
     username text PRIMARY KEY,
     user_id text,
     display_name text,
     password_hash text,
     created_at timestamp)`,
  `CREATE TABLE IF NOT EXISTS ${ks}.devices (
     device_id text PRIMARY KEY,
     user_id text,
     name text,
     created_at timestamp,
     refresh_token_hash text,
     refresh_expires_at timestamp,
     revoked_at timestamp)`,
  `CREATE TABLE IF NOT EXISTS ${ks}.conversation_log (
     conversation_id text,
     entry tinyint,
     seq bigint,
     user_id text,
     client_key text,
     message_id text,
     client_msg_id text,
     sender_user_id text,
     sender_device_id text,
     kind text,
     body text,
     sent_at timestamp,
     system_json text,
     key_seq bigint,
     role text,
     joined_seq bigint,
     left_seq bigint,
     joined_at timestamp,
     left_at timestamp,
     changed_seq bigint,
     conversation_kind text static,
     title text static,
     created_at timestamp static,
     last_seq bigint static,
     last_sent_at timestamp static,
     member_count int static,
     membership_seq bigint static,
     indexed_seq bigint static,
     PRIMARY KEY ((conversation_id), entry, seq, user_id, client_key))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.memberships_by_user (
     user_id text,
     conversation_id text,
     conversation_kind text,
     joined_seq bigint,
     left_seq bigint,
     left_at timestamp,
     PRIMARY KEY ((user_id), conversation_id))`,
  // The current watermark of each member: one partition per conversation, so readersOf lists them in one read.
  `CREATE TABLE IF NOT EXISTS ${ks}.read_watermarks (
     conversation_id text,
     user_id text,
     seq bigint,
     at timestamp,
     PRIMARY KEY ((conversation_id), user_id))`,
  // Every move of a watermark, so "when did this member first reach seq S" is one slice: the first
  // row at or past S in the member's own partition.
  `CREATE TABLE IF NOT EXISTS ${ks}.read_moves (
     conversation_id text,
     user_id text,
     seq bigint,
     at timestamp,
     PRIMARY KEY ((conversation_id, user_id), seq))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.delivery_cursors (
     conversation_id text,
     device_id text,
     user_id text,
     seq bigint,
     at timestamp,
     PRIMARY KEY ((conversation_id), device_id))`,
];

// Attachment references of a message (a JSON array), read and written only with the message row.
// ADD IF NOT EXISTS keeps the statement idempotent, as every migration here must be.
const SCHEMA_V2 = (ks: string): string[] => [`ALTER TABLE ${ks}.conversation_log ADD IF NOT EXISTS attachments_json text`];

// Settings a keyspace is bound to once first used, such as which sequencer numbers its conversations:
// the two write the conversation log's cells with different timestamps and must never be mixed.
const SCHEMA_V3 = (ks: string): string[] => [`CREATE TABLE IF NOT EXISTS ${ks}.settings (name text PRIMARY KEY, value text)`];

/** Applied in order, each once per keyspace. Append only: never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "users, devices, conversation log (messages, keys, members), memberships by user, receipts",
    statements: SCHEMA_V1,
  },
  { version: 2, description: "conversation_log.attachments_json", statements: SCHEMA_V2 },
  { version: 3, description: "settings (the keyspace's sequencer)", statements: SCHEMA_V3 },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface MigrateOptions {
  readonly keyspace: string;
  readonly replication: Replication;
  readonly migrations?: readonly Migration[];
  /** How long to wait for a migration another process is applying. */
  readonly waitMs?: number;
  /** A claim older than this is taken over: its owner is presumed dead (the statements are idempotent). */
  readonly staleClaimMs?: number;
}

const KEYSPACE_NAME = /^[a-z][a-z0-9_]{0,47}$/;
const OPTION_NAME = /^[A-Za-z][A-Za-z0-9_.]*$/;

export function assertKeyspaceName(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) {
    throw new RangeError(`keyspace must be lower-case letters, digits and _ (at most 48, starting with a letter), got "${keyspace}"`);
  }
}

/** The CQL map literal of a replication setting; names and values are checked, not trusted. */
export function replicationCql(replication: Replication): string {
  const entries = Object.entries(replication).map(([name, value]) => {
    if (!OPTION_NAME.test(name)) throw new RangeError(`bad replication option name "${name}"`);
    if (typeof value === "number" && !(Number.isInteger(value) && value > 0)) throw new RangeError(`replication option ${name} must be a positive integer, got ${value}`);
    return `'${name}': '${String(value).replace(/'/g, "''")}'`;
  });
  return `{${entries.join(", ")}}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates the keyspace if missing and applies the migrations it lacks, recording each in
 * `schema_migrations`. Several processes may start at once: each migration is claimed with a
 * lightweight transaction, so one process runs its DDL (concurrent CREATE TABLE of the same table can
 * leave the cluster with two schema versions) while the others wait for it to be marked applied.
 * Returns the version the keyspace is at.
 */
export async function migrate(session: CqlSession, options: MigrateOptions): Promise<number> {
  const { keyspace, replication, migrations = MIGRATIONS, waitMs = 120_000, staleClaimMs = 60_000 } = options;
  assertKeyspaceName(keyspace);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) throw new Error(`migration #${index} has version ${migration.version}; versions must be 1, 2, 3, ...`);
  });
  await session.ddl(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ${replicationCql(replication)}`);
  await session.ddl(
    `CREATE TABLE IF NOT EXISTS ${keyspace}.schema_migrations (
       version int PRIMARY KEY,
       description text,
       state text,
       owner text,
       started_at timestamp,
       applied_at timestamp)`,
  );
  const table = `${keyspace}.schema_migrations`;
  const recorded = await session.readAll(`SELECT version, state FROM ${table}`, []);
  const newest = Math.max(0, ...recorded.filter((row) => row.state === "applied").map((row) => Number(row.version)));
  if (newest > migrations.length) {
    throw new Error(`keyspace ${keyspace} is at schema version ${newest}, newer than this build knows (${migrations.length}); refusing to use it`);
  }

  const owner = randomUUID();
  for (const migration of migrations) {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const claim = await session.conditional(
        `INSERT INTO ${table} (version, description, state, owner, started_at) VALUES (?, ?, 'applying', ?, ?) IF NOT EXISTS`,
        [migration.version, migration.description, owner, new Date()],
      );
      let mine = claim[0]?.["[applied]"] === true;
      const current = claim[0];
      if (!mine && current?.state === "applied") break;
      if (!mine && current && Date.now() - (current.started_at as Date).getTime() > staleClaimMs) {
        const takeover = await session.conditional(
          `UPDATE ${table} SET owner = ?, started_at = ? WHERE version = ? IF owner = ? AND state = 'applying'`,
          [owner, new Date(), migration.version, current.owner],
        );
        mine = takeover[0]?.["[applied]"] === true;
      }
      if (mine) {
        for (const statement of migration.statements(keyspace)) await session.ddl(statement);
        await session.conditional(`UPDATE ${table} SET state = 'applied', applied_at = ? WHERE version = ? IF owner = ?`, [
          new Date(),
          migration.version,
          owner,
        ]);
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(`migration ${migration.version} of keyspace ${keyspace} is being applied by ${String(current?.owner)} since ${String(current?.started_at)}; gave up waiting after ${waitMs} ms`);
      }
      await sleep(200);
    }
  }
  return migrations.length;
}
