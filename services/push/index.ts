export { createPushService, PREVIEW_CHARACTERS, withdrawOnRead } from "./push-service.js";
export type { PushService, PushServiceOptions, PushTargetInput } from "./push-service.js";
export { createPushWorker } from "./push-worker.js";
export type { PushWorker, PushWorkerEvent, PushWorkerOptions, RetryPolicy } from "./push-worker.js";
export { pushPayload } from "./push-payload.js";
export type { PushPayload } from "./push-payload.js";
