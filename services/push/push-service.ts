import type { Principal } from "../accounts/index.js";
import { ErrorReason, invalidArgument, permissionDenied, requireId } from "../errors.js";
import type { ConversationStore, NewPushJob, PushStore, PushTarget, SessionRegistry, StoredMessage } from "../ports/index.js";

/** Pushes carry at most this much of the text, and only for users who allowed previews. */
export const PREVIEW_CHARACTERS = 100;
const MAX_URL_LENGTH = 2048;

export type PushTargetInput =
  | { readonly case: "webhook"; readonly value: { readonly url: string } }
  | { readonly case: "webPush"; readonly value: { readonly endpoint: string; readonly p256dh: string; readonly auth: string } }
  | { readonly case: undefined; readonly value?: undefined };

export interface PushServiceOptions {
  readonly store: PushStore;
  readonly conversations: ConversationStore;
  /** Which devices have a stream open anywhere in the cluster: they get the message live, not a push. */
  readonly sessions: SessionRegistry;
  readonly vapidPublicKey: string;
  /** Called after jobs were queued, so the worker sends them now rather than at its next poll. */
  readonly onQueued?: () => void;
  /** Reports a failure of the background enqueue (there is no caller left to tell). */
  readonly onError?: (error: unknown, what: string) => void;
  /** Messages waiting to be turned into jobs; past it new ones get no push (and onError hears of it). */
  readonly maxPending?: number;
  readonly now?: () => Date;
}

export type PushService = ReturnType<typeof createPushService>;

function checkUrl(raw: string, field: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument(ErrorReason.PUSH_TARGET_INVALID, `${field} is not a URL; give an absolute http:// or https:// URL`, field);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || raw.length > MAX_URL_LENGTH || url.username || url.password) {
    throw invalidArgument(
      ErrorReason.PUSH_TARGET_INVALID,
      `${field} must be an http:// or https:// URL of at most ${MAX_URL_LENGTH} characters, without credentials`,
      field,
    );
  }
  return url.toString();
}

function checkKey(raw: string, bytes: number, field: string, what: string): string {
  const decoded = /^[A-Za-z0-9_-]+={0,2}$/.test(raw) ? Buffer.from(raw, "base64url") : Buffer.alloc(0);
  if (decoded.length !== bytes || (bytes === 65 && decoded[0] !== 4)) {
    throw invalidArgument(ErrorReason.PUSH_TARGET_INVALID, `${field} must be ${what}, base64url-encoded, as PushSubscription.toJSON() gives it`, field);
  }
  return raw.replace(/=+$/, "");
}

/**
 * Push targets and choices (the RPCs), and the step after a message is stored: queue a push for every
 * recipient device that has a target, is not connected and has not muted the conversation. That step
 * runs off the send path, batched, so a sender's ack never waits for it.
 */
export function createPushService(options: PushServiceOptions) {
  const { store, conversations, sessions } = options;
  const now = options.now ?? (() => new Date());
  const maxPending = options.maxPending ?? 10_000;
  const report = options.onError ?? (() => {});
  let pending: { readonly message: StoredMessage; readonly memberIds: readonly string[] }[] = [];
  let flushing: Promise<void> | undefined;

  async function requireMember(conversationId: string, userId: string): Promise<void> {
    if (!conversationId || !(await conversations.isMember(conversationId, userId))) {
      throw permissionDenied(ErrorReason.NOT_A_MEMBER, "you are not a member of this conversation (or it does not exist)", "conversation_id");
    }
  }

  async function jobsFor(message: StoredMessage, memberIds: readonly string[], at: Date): Promise<NewPushJob[]> {
    const recipients = memberIds.filter((userId) => userId !== message.senderUserId);
    const targets = await store.targets.targetsOf(recipients);
    if (targets.length === 0) return [];
    const users = [...new Set(targets.map((target) => target.userId))];
    const [muted, previews, connected] = await Promise.all([
      store.targets.mutedAmong(message.conversationId, users),
      store.targets.previewsAmong(users),
      connectedDevices(users),
    ]);
    return targets
      .filter((target) => !muted.has(target.userId) && !connected.has(target.deviceId))
      .map((target) => ({
        // Derived from the message and device, so a repeated enqueue of the same push is one job.
        jobId: `push_${message.messageId}_${target.deviceId}`,
        kind: "message" as const,
        userId: target.userId,
        deviceId: target.deviceId,
        conversationId: message.conversationId,
        seq: message.seq,
        messageId: message.messageId,
        senderUserId: message.senderUserId,
        ...(previews.has(target.userId) && message.text ? { preview: [...message.text].slice(0, PREVIEW_CHARACTERS).join("") } : {}),
        createdAt: at,
      }));
  }

  async function connectedDevices(userIds: readonly string[]): Promise<Set<string>> {
    const lists = await Promise.all(userIds.map((userId) => sessions.devicesOf(userId)));
    return new Set(lists.flat().map((location) => location.deviceId));
  }

  async function flush(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      const at = now();
      const jobs: NewPushJob[] = [];
      for (const { message, memberIds } of batch) {
        try {
          jobs.push(...(await jobsFor(message, memberIds, at)));
        } catch (error) {
          report(error, "push fan-out");
        }
      }
      try {
        await store.jobs.enqueue(jobs);
        if (jobs.length > 0) options.onQueued?.();
      } catch (error) {
        report(error, "push enqueue");
      }
    }
  }

  function scheduleFlush(): void {
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(flush)
      .finally(() => {
        flushing = undefined;
        if (pending.length > 0) scheduleFlush();
      });
  }

  return {
    async registerTarget(principal: Principal, input: PushTargetInput): Promise<void> {
      const base = { userId: principal.userId, deviceId: principal.deviceId, createdAt: now() };
      let target: PushTarget;
      if (input.case === "webhook") {
        target = { ...base, provider: "webhook", endpoint: checkUrl(input.value.url, "webhook.url") };
      } else if (input.case === "webPush") {
        target = {
          ...base,
          provider: "web-push",
          endpoint: checkUrl(input.value.endpoint, "web_push.endpoint"),
          p256dh: checkKey(input.value.p256dh, 65, "web_push.p256dh", "an uncompressed P-256 public key (65 bytes)"),
          auth: checkKey(input.value.auth, 16, "web_push.auth", "a 16-byte secret"),
        };
      } else {
        throw invalidArgument(ErrorReason.PUSH_TARGET_INVALID, "set webhook or web_push", "target");
      }
      await store.targets.putTarget(target);
    },

    async unregisterTarget(principal: Principal): Promise<void> {
      await store.targets.removeTarget(principal.deviceId);
      await store.jobs.dropDevice(principal.deviceId, now());
    },

    async setMuted(principal: Principal, conversationId: string, muted: boolean): Promise<void> {
      requireId(conversationId, "conversation_id");
      await requireMember(conversationId, principal.userId);
      await store.targets.setMuted(principal.userId, conversationId, muted);
    },

    async setPreviews(principal: Principal, enabled: boolean): Promise<void> {
      await store.targets.setPreviews(principal.userId, enabled);
    },

    async settings(principal: Principal): Promise<{ vapidPublicKey: string; previews: boolean; mutedConversationIds: string[] }> {
      const [previews, muted] = await Promise.all([store.targets.previewsAmong([principal.userId]), store.targets.listMuted(principal.userId)]);
      return { vapidPublicKey: options.vapidPublicKey, previews: previews.has(principal.userId), mutedConversationIds: muted };
    },

    /**
     * A new message was stored and published to `memberIds`. Returns at once: the pushes are worked
     * out and queued in the background, many messages per batch.
     */
    messageStored(message: StoredMessage, memberIds: readonly string[]): void {
      if (message.kind !== "text") return;
      if (pending.length >= maxPending) {
        report(new Error(`more than ${maxPending} messages wait to be turned into pushes; this one gets none`), "push backlog");
        return;
      }
      pending.push({ message, memberIds });
      scheduleFlush();
    },

    /**
     * The user read the conversation up to `seq` (on any device): pushes still queued for it are
     * withdrawn, and devices already showing one are sent a "clear" with the same collapse key.
     */
    async readUpTo(userId: string, conversationId: string, seq: bigint): Promise<void> {
      const at = now();
      const { shownOn } = await store.jobs.withdraw(userId, conversationId, seq, at);
      if (shownOn.length === 0) return;
      await store.jobs.enqueue(
        shownOn.map((deviceId) => ({
          jobId: `clear_${conversationId}_${seq}_${deviceId}`,
          kind: "clear" as const,
          userId,
          deviceId,
          conversationId,
          seq,
          messageId: "",
          senderUserId: "",
          createdAt: at,
        })),
      );
      options.onQueued?.();
    },

    /** Queues what is still waiting to be turned into jobs. */
    async drain(): Promise<void> {
      while (flushing || pending.length > 0) await (flushing ?? flush());
    },
  };
}

/**
 * The same sync service, whose markRead (device stream `read` frames, the MarkRead RPC and GraphQL
 * alike) also withdraws the pushes the read made stale. A failed withdrawal is reported, never
 * turned into a failed read: the read watermark is what the user asked for.
 */
export function withdrawOnRead<T extends { markRead(principal: Principal, conversationId: string, seq: bigint): Promise<bigint> }>(
  sync: T,
  push: Pick<PushService, "readUpTo">,
  onError: (error: unknown, what: string) => void,
): T {
  return {
    ...sync,
    async markRead(principal: Principal, conversationId: string, seq: bigint): Promise<bigint> {
      const watermark = await sync.markRead(principal, conversationId, seq);
      await push.readUpTo(principal.userId, conversationId, watermark).catch((error: unknown) => onError(error, "push withdrawal"));
      return watermark;
    },
  };
}
