import type { Database } from "better-sqlite3";

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database) => void;
}

// STRICT so a wrongly typed bind fails loudly instead of being stored with another type.
// WITHOUT ROWID where the primary key is the access path: messages are read by range of
// (conversation_id, seq), so the log is clustered on it and a page of history is one B-tree scan.
// No CHECK on the kind columns: SQLite cannot alter a CHECK without rebuilding the table, and new
// message kinds must not need a rewrite of the whole log.
// Foreign keys stay inside an aggregate (conversation -> members, messages; user -> devices); links
// between aggregates (member -> user) are the service's job, as they will be on Cassandra.
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS users (
  user_id       TEXT    NOT NULL PRIMARY KEY,
  username      TEXT    NOT NULL UNIQUE,
  display_name  TEXT    NOT NULL,
  password_hash TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE IF NOT EXISTS devices (
  device_id          TEXT    NOT NULL PRIMARY KEY,
  user_id            TEXT    NOT NULL REFERENCES users (user_id),
  name               TEXT    NOT NULL,
  created_at         INTEGER NOT NULL,
  refresh_token_hash TEXT    NOT NULL,
  refresh_expires_at INTEGER NOT NULL,
  revoked_at         INTEGER
) WITHOUT ROWID, STRICT;
CREATE INDEX IF NOT EXISTS devices_by_user ON devices (user_id);

CREATE TABLE IF NOT EXISTS conversations (
  conversation_id TEXT    NOT NULL PRIMARY KEY,
  kind            TEXT    NOT NULL,
  title           TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  last_seq        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID, STRICT;

CREATE TABLE IF NOT EXISTS members (
  conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
  user_id         TEXT    NOT NULL,
  role            TEXT    NOT NULL DEFAULT 'member',
  joined_seq      INTEGER NOT NULL,
  left_seq        INTEGER,
  joined_at       INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);

CREATE TABLE IF NOT EXISTS messages (
  conversation_id  TEXT    NOT NULL REFERENCES conversations (conversation_id),
  seq              INTEGER NOT NULL,
  message_id       TEXT    NOT NULL UNIQUE,
  sender_user_id   TEXT    NOT NULL,
  sender_device_id TEXT    NOT NULL,
  client_msg_id    TEXT    NOT NULL,
  kind             TEXT    NOT NULL,
  text             TEXT    NOT NULL,
  sent_at          INTEGER NOT NULL,
  system_json      TEXT,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID, STRICT;
-- The idempotency key: a retried send finds its original instead of getting a second seq.
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_msg_id ON messages (sender_user_id, client_msg_id);
`;

// Receipts. Every move of a read watermark is a row, so "who read seq S and when" is exact: the
// first row of each member at or past S. The watermark itself is the newest row of the member,
// one seek down the primary key; a row is only inserted when it moves the watermark forward.
// Delivery cursors are one row per (conversation, device), overwritten forwards.
// The inbox needs no new index: members_by_user finds the user's rows, and each row's
// conversation, head message and watermark are primary-key seeks.
const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS read_marks (
  conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
  user_id         TEXT    NOT NULL,
  seq             INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, user_id, seq)
) WITHOUT ROWID, STRICT;

CREATE TABLE IF NOT EXISTS delivery_cursors (
  conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
  device_id       TEXT    NOT NULL,
  user_id         TEXT    NOT NULL,
  seq             INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, device_id)
) WITHOUT ROWID, STRICT;
`;

// Attachment references of a message, as a JSON array: read and written only with the message, never
// queried by, so a column of its own on the clustered row is enough. NULL for a message without any.
const SCHEMA_V3 = `ALTER TABLE messages ADD COLUMN attachments_json TEXT;`;

/**
 * Applied in order, each in its own transaction together with the bump of `PRAGMA user_version`, so
 * a crash mid-upgrade leaves the file at the previous version. Append only: never edit a shipped one.
 */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "users, devices, conversations, members, messages", up: (db) => db.exec(SCHEMA_V1) },
  { version: 2, description: "read_marks, delivery_cursors", up: (db) => db.exec(SCHEMA_V2) },
  { version: 3, description: "messages.attachments_json", up: (db) => db.exec(SCHEMA_V3) },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the file up to SCHEMA_VERSION and returns the version it is at. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) throw new Error(`migration #${index} has version ${migration.version}; versions must be 1, 2, 3, ...`);
  });
  const latest = migrations.length;
  const readVersion = () => Number(db.pragma("user_version", { simple: true }));
  for (;;) {
    // One transaction per step, IMMEDIATE so two processes opening the same file cannot both apply it.
    const applied = db
      .transaction(() => {
        const current = readVersion();
        if (current > latest) {
          throw new Error(`the database is at schema version ${current}, newer than this build knows (${latest}); refusing to open it`);
        }
        if (current === latest) return false;
        const migration = migrations[current];
        migration.up(db);
        db.pragma(`user_version = ${migration.version}`);
        return true;
      })
      .immediate();
    if (!applied) return readVersion();
  }
}
