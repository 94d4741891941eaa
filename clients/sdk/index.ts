export { ChatClient } from "./chat-client.js";
export type { ChatClientOptions, Protocol } from "./chat-client.js";
export { DeviceStream, SendRejectedError } from "./device-stream.js";
export type { DeviceEvent, DeviceStreamOptions } from "./device-stream.js";
export { ChatSession, OutboxFullError, SessionClosedError, isTransientRejection } from "./chat-session.js";
export type { BackoffOptions, ChatSessionEvents, ChatSessionOptions, ConnectionChange, ConnectionState, Recipient } from "./chat-session.js";
export { createFileStorage, createMemoryStorage } from "./session-storage.js";
export type { JsonValue, SessionStorage } from "./session-storage.js";
export { isTokenExpired } from "./chat-client.js";
