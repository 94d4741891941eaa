export type { AccountStore, DeviceRecord, UserRecord } from "./account-store.js";
export { GroupFullError } from "./conversation-store.js";
export type {
  ConversationHead,
  ConversationKindName,
  ConversationRecord,
  ConversationStore,
  GroupRoleName,
  InboxPageOptions,
  InboxRow,
  MemberRecord,
  MembershipChange,
  NewGroup,
} from "./conversation-store.js";
export { PresenceOverflowError } from "./presence-registry.js";
export type { PresenceRegistry, PresenceState, PresenceWatch } from "./presence-registry.js";
export type { DeliveryCursor, ReadMark, ReceiptStore, Watermark } from "./receipt-store.js";
export type { RateDecision, RateLimit, RateLimiter } from "./rate-limiter.js";
export type { DeviceLocation, SessionRegistry } from "./session-registry.js";
export type { AppendResult, AttachmentRef, MessageKindName, MessageStore, NewMessage, ReadRangeOptions, StoredMessage } from "./message-store.js";
export { BusOverflowError } from "./event-bus.js";
export type { BusEvent, BusSubscription, EventBus, ReceiptEvent, SubscribeOptions } from "./event-bus.js";

import type { AccountStore } from "./account-store.js";
import type { ConversationStore } from "./conversation-store.js";
import type { MessageStore } from "./message-store.js";
import type { ReceiptStore } from "./receipt-store.js";

/** Everything a store engine provides: one object per engine, built by its `create*` factory. */
export interface ChatStore {
  readonly accounts: AccountStore;
  readonly conversations: ConversationStore;
  readonly messages: MessageStore;
  readonly receipts: ReceiptStore;
  /** Completes pending writes, then releases the engine. */
  close(): Promise<void>;
}
export { noTelemetry } from "./telemetry.js";
export type { MessageTrace, Surface, Telemetry } from "./telemetry.js";
export type { DeadLetter, NewPushJob, PushJob, PushJobKind, PushJobQueue, PushProviderName, PushStore, PushTarget, PushTargetStore } from "./push-store.js";
export type { PushOutcome, PushSender } from "./push-sender.js";
export type { BlobInfo, BlobStore, SignedRequest, UploadGrant } from "./blob-store.js";
