export interface PresenceState {
  readonly userId: string;
  readonly online: boolean;
  /** The last heartbeat of any of the user's devices; absent if never seen. */
  readonly lastSeen?: Date;
}

/** Changes of the watched users only, as an AsyncIterable. */
export interface PresenceWatch extends AsyncIterable<PresenceState> {
  /** Replaces the set of watched users. */
  update(userIds: readonly string[]): void;
  close(): void;
  readonly closed: Promise<Error | undefined>;
}

/**
 * Who is online. A user is online while any of their devices has sent a heartbeat within the
 * timeout; a device that disconnects cleanly stops counting at once, one that vanishes stops when its
 * timeout passes. Changes go only to watchers of that user, never to all contacts.
 */
export interface PresenceRegistry {
  heartbeat(userId: string, deviceId: string): Promise<void>;
  disconnect(userId: string, deviceId: string): Promise<void>;
  lookup(userIds: readonly string[]): Promise<PresenceState[]>;
  /** Emits each online/offline transition of the watched users (no initial states: use lookup). */
  watch(userIds: readonly string[], options?: { readonly bufferLimit?: number }): PresenceWatch;
  close(): Promise<void>;
}

/** Ends a watch whose reader fell more than its buffer limit behind. */
export class PresenceOverflowError extends Error {
  override readonly name = "PresenceOverflowError";
}
