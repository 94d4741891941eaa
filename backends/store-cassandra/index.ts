export { createCassandraStore, type CassandraStore, type CassandraStoreOptions } from "./store-cassandra.js";
export { MIGRATIONS, SCHEMA_VERSION, migrate, type Migration, type Replication } from "./schema.js";
export { DEFAULT_CONSISTENCY, type CassandraConsistency } from "./session.js";
export { DEFAULT_SEQUENCER_OPTIONS, type SequencerOptions } from "./sequencer.js";
export {
  ConversationExistsError,
  IdempotencyKeyConflictError,
  SequencerContentionError,
  UnknownConversationError,
} from "./errors.js";
export type { FencedLog, LogEntry } from "./fenced-log.js";
