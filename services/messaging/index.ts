export { runDeviceSession } from "./device-session.js";
export type { DeviceSessionOptions, ServerFrame } from "./device-session.js";
export { CODE_NUMBERS, statusOf } from "./frame-status.js";
export { toMessageView } from "./message-view.js";
export type { MessageView } from "./message-view.js";
export { createMessagingService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_TEXT_CHARACTERS } from "./messaging-service.js";
export type { ConversationView, HistoryInput, MessagingService, MessagingServiceOptions, SendInput } from "./messaging-service.js";
