export { createSqliteStore, type SqliteSettings, type SqliteStore, type SqliteStoreOptions } from "./store-sqlite.js";
export { MIGRATIONS, SCHEMA_VERSION, type Migration } from "./schema.js";
export { UnknownConversationError } from "./log.js";
