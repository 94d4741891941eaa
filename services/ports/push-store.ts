export type PushProviderName = "webhook" | "web-push";

/** Where one device's pushes go. A device has at most one target. */
export interface PushTarget {
  readonly userId: string;
  readonly deviceId: string;
  readonly provider: PushProviderName;
  /** The webhook URL, or the Web Push subscription's endpoint. */
  readonly endpoint: string;
  /** Web Push only: the subscription's keys (base64url). */
  readonly p256dh?: string;
  readonly auth?: string;
  readonly createdAt: Date;
}

/** Targets and the per-user choices that decide whether a push is sent and what it may say. */
export interface PushTargetStore {
  /** Replaces the device's target. */
  putTarget(target: PushTarget): Promise<void>;
  removeTarget(deviceId: string): Promise<void>;
  getTarget(deviceId: string): Promise<PushTarget | undefined>;
  /** The targets of each of these users' devices, in one call (the fan-out asks per message). */
  targetsOf(userIds: readonly string[]): Promise<PushTarget[]>;
  setMuted(userId: string, conversationId: string, muted: boolean): Promise<void>;
  /** Of these users, those who muted the conversation. */
  mutedAmong(conversationId: string, userIds: readonly string[]): Promise<Set<string>>;
  listMuted(userId: string): Promise<string[]>;
  setPreviews(userId: string, enabled: boolean): Promise<void>;
  /** Of these users, those who allowed previews (off unless turned on). */
  previewsAmong(userIds: readonly string[]): Promise<Set<string>>;
}

/** "message": a new message to announce. "clear": the conversation was read elsewhere; remove what was shown. */
export type PushJobKind = "message" | "clear";

export interface NewPushJob {
  /** Also the idempotency key the receiver sees, so a retried delivery can be recognised. */
  readonly jobId: string;
  readonly kind: PushJobKind;
  readonly userId: string;
  readonly deviceId: string;
  readonly conversationId: string;
  /** The message's seq, or for "clear" the read watermark. */
  readonly seq: bigint;
  readonly messageId: string;
  readonly senderUserId: string;
  /** Only when the user allowed previews: the start of the message text. */
  readonly preview?: string;
  readonly createdAt: Date;
}

export interface PushJob extends NewPushJob {
  /** Tries made so far (a claim counts as a try). */
  readonly attempts: number;
}

export interface DeadLetter {
  readonly job: PushJob;
  readonly error: string;
  readonly at: Date;
}

/**
 * The stored queue of pushes. A job is claimed with a lease: a gateway that dies while sending
 * leaves it to be claimed again once the lease runs out, so a push survives a crash or restart.
 */
export interface PushJobQueue {
  enqueue(jobs: readonly NewPushJob[]): Promise<void>;
  /**
   * Takes up to `limit` jobs due at `now`, oldest first, counting a try on each and hiding it until
   * `now + leaseMs` (when it is due again unless completed, retried or dead-lettered before).
   */
  claimDue(now: Date, limit: number, leaseMs: number): Promise<PushJob[]>;
  /** Delivered: the job leaves the queue (remembered only for `withdraw`). */
  complete(jobId: string, at: Date): Promise<void>;
  /** Due again at `at`. */
  retry(jobId: string, at: Date, error: string): Promise<void>;
  /** Given up: the job leaves the queue and is kept as a dead letter. */
  deadLetter(jobId: string, error: string, at: Date): Promise<void>;
  /**
   * The user read the conversation up to `seq`: their pending "message" jobs at or below it are
   * cancelled. Resolves with the devices that were already sent one of those (once per device and
   * read), which need a "clear" to take the shown notification down.
   */
  withdraw(userId: string, conversationId: string, seq: bigint, at: Date): Promise<{ cancelled: number; shownOn: string[] }>;
  /** Drops the device's pending jobs (its target went away). */
  dropDevice(deviceId: string, at: Date): Promise<number>;
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /** Forgets delivered and cancelled jobs finished before `before` (dead letters are kept). */
  prune(before: Date): Promise<number>;
  /** Jobs not yet delivered, dead-lettered or cancelled. */
  pendingCount(): Promise<number>;
}

/** Everything a push engine keeps: one object per engine, built by its `create*` factory. */
export interface PushStore {
  readonly targets: PushTargetStore;
  readonly jobs: PushJobQueue;
  close(): Promise<void>;
}
