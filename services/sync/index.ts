export { createSyncService, inboxPageToken } from "./sync-service.js";
export type { InboxEntryView, MessageReaderView, SyncService, SyncServiceOptions } from "./sync-service.js";
