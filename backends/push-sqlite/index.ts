export { createSqlitePushStore, PUSH_MIGRATIONS, type SqlitePushStoreOptions } from "./push-sqlite.js";
