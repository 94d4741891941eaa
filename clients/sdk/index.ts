export { ChatClient } from "./chat-client.js";
export type { ChatClientOptions, Protocol } from "./chat-client.js";
export { DeviceStream, SendRejectedError } from "./device-stream.js";
export type { DeviceEvent, DeviceStreamOptions } from "./device-stream.js";
