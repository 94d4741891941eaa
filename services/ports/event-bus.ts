import type { ConversationRecord } from "./conversation-store.js";
import type { StoredMessage } from "./message-store.js";

export interface ReceiptEvent {
  readonly conversationId: string;
  readonly userId: string;
  /** Set for delivered receipts (per device). */
  readonly deviceId: string;
  readonly kind: "delivered" | "read";
  readonly seq: bigint;
  readonly at: Date;
}

/** What the bus carries to the gateways holding a user's devices. */
export type BusEvent =
  | { readonly kind: "message"; readonly message: StoredMessage }
  | { readonly kind: "receipt"; readonly receipt: ReceiptEvent }
  | { readonly kind: "typing"; readonly conversationId: string; readonly userId: string; readonly typing: boolean; readonly expiresAt: Date }
  | { readonly kind: "conversation"; readonly change: "joined" | "left" | "updated"; readonly conversation: ConversationRecord }
  | { readonly kind: "device-revoked"; readonly deviceId: string };

export interface BusSubscription extends AsyncIterable<BusEvent> {
  /** Stops delivery; the iterator ends. */
  close(): void;
  /** Resolves when the subscription has ended, with the error that ended it if any. */
  readonly closed: Promise<Error | undefined>;
}

export interface SubscribeOptions {
  /**
   * How many undelivered events may wait for this subscriber. Past it the subscription ends with an
   * overflow error: the store is the source of truth, so the subscriber resumes from its cursor
   * instead of the publisher slowing down for it.
   */
  readonly bufferLimit?: number;
}

/** Fan-out of events to every device of the given users, wherever they are connected. */
export interface EventBus {
  publish(userIds: readonly string[], event: BusEvent): Promise<void>;
  subscribe(userId: string, options?: SubscribeOptions): BusSubscription;
  close(): Promise<void>;
  /** Events queued for this gateway but not yet taken or not yet acknowledged; only buses that queue have one. */
  backlog?(): Promise<{ readonly pending: number; readonly ackPending: number }>;
}

export class BusOverflowError extends Error {
  override readonly name = "BusOverflowError";
}
