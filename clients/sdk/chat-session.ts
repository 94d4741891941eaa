import { fromJson, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { SessionSchema, type Session } from "../../gen/chat/v1/accounts_pb.js";
import { ErrorReason, type Status } from "../../gen/chat/v1/errors_pb.js";
import type { ConversationEvent, PresenceEvent, Receipt, SendMessageResponse, TypingEvent } from "../../gen/chat/v1/messaging_pb.js";
import type { Message } from "../../gen/chat/v1/types_pb.js";
import { isTokenExpired, type ChatClient } from "./chat-client.js";
import { SendRejectedError, type DeviceStream } from "./device-stream.js";
import { createMemoryStorage, type JsonValue, type SessionStorage } from "./session-storage.js";

export type Recipient = { readonly conversationId: string } | { readonly recipientUserId: string };

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

export interface ConnectionChange {
  readonly state: ConnectionState;
  /** Why the last stream ended, when it did not end by close(). */
  readonly error?: Error;
  /** How long until the next attempt, when reconnecting. */
  readonly delayMs?: number;
}

export interface ChatSessionEvents {
  message: Message;
  receipt: Receipt;
  typing: TypingEvent;
  presence: PresenceEvent;
  conversation: ConversationEvent;
  "caught-up": undefined;
  connection: ConnectionChange;
  /** Failures with nowhere else to go: storage writes, listeners that threw. */
  error: Error;
}

export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  readonly factor?: number;
}

export interface ChatSessionOptions {
  /** Where tokens, cursors and the outbox are kept; default in memory (lost on restart). */
  readonly storage?: SessionStorage;
  /** The key in storage; use one per account when several share a storage. */
  readonly storageKey?: string;
  readonly backoff?: BackoffOptions;
  /** How long to wait for `ready` before giving up on a stream; default 15 s. */
  readonly connectTimeoutMs?: number;
  /** Most messages waiting for their ack; send() fails past it. */
  readonly maxOutbox?: number;
  /** For tests: a deterministic source of jitter. */
  readonly random?: () => number;
}

/** send() refused because too many messages are already waiting for their ack. */
export class OutboxFullError extends Error {
  override readonly name = "OutboxFullError";
  constructor(readonly limit: number) {
    super(`the outbox already holds ${limit} unacknowledged messages`);
  }
}

/** The session was closed before this message was acknowledged; it stays stored and a new session sends it. */
export class SessionClosedError extends Error {
  override readonly name = "SessionClosedError";
  constructor() {
    super("the chat session was closed");
  }
}

interface OutboxEntry {
  readonly clientMsgId: string;
  readonly to: Recipient;
  readonly text: string;
  /** Uploaded already (AttachmentsService.CreateUpload and the PUT), to the conversation in `to`. */
  readonly attachmentIds?: readonly string[];
  /** The stream this entry was last written to: each stream gets every entry once. */
  sentOn: DeviceStream | undefined;
  waiters: { resolve: (ack: SendMessageResponse) => void; reject: (error: Error) => void }[];
}

interface StoredState {
  session?: JsonValue;
  cursors: Record<string, string>;
  outbox: { clientMsgId: string; to: Recipient; text: string; attachmentIds?: string[] }[];
}

const TRANSIENT_CODES = new Set<number>([Code.Unavailable, Code.ResourceExhausted, Code.Aborted, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Canceled]);
const TRANSIENT_REASONS = new Set<ErrorReason>([ErrorReason.RATE_LIMITED, ErrorReason.UNAVAILABLE, ErrorReason.SERVER_DRAINING, ErrorReason.INTERNAL]);

/** A rejection worth retrying with the same client_msg_id; anything else will never succeed. */
export function isTransientRejection(status: Status): boolean {
  return TRANSIENT_REASONS.has(status.reason) || TRANSIENT_CODES.has(status.code);
}

/**
 * A device that stays connected: one stream at a time, reopened after every failure with exponential
 * backoff and full jitter, resumed from the stored cursors so nothing is missed or repeated, and an
 * outbox that re-sends every unacknowledged message with its original client_msg_id (the server
 * answers a retry with the original message, so nothing is doubled either).
 *
 * Order: the server handles one stream's frames one after another and the outbox re-sends in order,
 * so messages land in the order send() was called. A transient rejection (rate limit) is the one
 * exception: the messages behind it may already have landed when it is retried.
 */
export class ChatSession {
  private readonly storage: SessionStorage;
  private readonly storageKey: string;
  private readonly backoff: Required<BackoffOptions>;
  private readonly maxOutbox: number;
  private readonly connectTimeoutMs: number;
  private lastHeardAt = 0;
  private everConnected = false;
  private readonly random: () => number;
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly listeners = new Map<keyof ChatSessionEvents, Set<(value: never) => void>>();
  private readonly cursorMap = new Map<string, bigint>();
  private current: DeviceStream | undefined;
  private connectedStream: DeviceStream | undefined;
  private resume = false;
  private closing = false;
  private stateValue: ConnectionState = "connecting";
  private wakeUp: (() => void) | undefined;
  private goAwayDelayMs: number | undefined;
  private saveScheduled: Promise<void> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;
  private readonly running: Promise<void>;

  private constructor(
    readonly client: ChatClient,
    options: ChatSessionOptions,
    stored: StoredState | undefined,
  ) {
    this.storage = options.storage ?? createMemoryStorage();
    this.storageKey = options.storageKey ?? "chat-session";
    this.backoff = { initialMs: options.backoff?.initialMs ?? 250, maxMs: options.backoff?.maxMs ?? 30_000, factor: options.backoff?.factor ?? 2 };
    this.maxOutbox = options.maxOutbox ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.random = options.random ?? Math.random;
    if (stored) {
      for (const [conversationId, seq] of Object.entries(stored.cursors)) this.cursorMap.set(conversationId, BigInt(seq));
      for (const entry of stored.outbox) this.outbox.set(entry.clientMsgId, { ...entry, sentOn: undefined, waiters: [] });
      // A restarted app must catch up from where it stopped, not start live.
      this.resume = true;
    }
    client.autoRefresh = true;
    this.unsubscribe = client.onSessionChange(() => void this.save());
    void this.save();
    this.running = this.run();
  }

  /**
   * Starts a session. The client must be logged in, unless the storage holds the tokens of an earlier
   * session, which are then restored. Stored cursors and pending messages carry on.
   */
  static async open(client: ChatClient, options: ChatSessionOptions = {}): Promise<ChatSession> {
    const storage = options.storage ?? createMemoryStorage();
    const stored = (await storage.get(options.storageKey ?? "chat-session")) as StoredState | undefined;
    const storedSession = stored?.session ? fromJson(SessionSchema, stored.session) : undefined;
    if (!client.isLoggedIn) {
      if (!storedSession) throw new Error("not logged in and no stored session: call signUp or logIn first");
      client.restore(storedSession);
    } else if (storedSession && (storedSession.user?.userId !== client.userId || storedSession.deviceId !== client.deviceId)) {
      throw new Error("the storage belongs to another device: use another storage or storageKey");
    }
    return new ChatSession(client, { ...options, storage }, stored);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Conversation id → the last seq this device has received. */
  get cursors(): ReadonlyMap<string, bigint> {
    return this.cursorMap;
  }

  /** Messages not yet acknowledged by the server. */
  get pendingCount(): number {
    return this.outbox.size;
  }

  /** The stream in use, if connected; for receipts, typing and presence frames. */
  get stream(): DeviceStream | undefined {
    return this.connectedStream;
  }

  on<K extends keyof ChatSessionEvents>(kind: K, listener: (value: ChatSessionEvents[K]) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  /**
   * Queues a message and resolves with its ack once the server has stored it, however many
   * reconnects that takes. Rejects with SendRejectedError when the server refuses it for good.
   * `attachmentIds` are files already uploaded to that conversation (ChatClient.uploadAttachment).
   */
  async send(to: Recipient, text: string, clientMsgId: string = randomUUID(), attachmentIds: readonly string[] = []): Promise<SendMessageResponse> {
    if (this.closing) throw new SessionClosedError();
    const existing = this.outbox.get(clientMsgId);
    if (existing) return new Promise((resolve, reject) => existing.waiters.push({ resolve, reject }));
    if (this.outbox.size >= this.maxOutbox) throw new OutboxFullError(this.maxOutbox);
    const entry: OutboxEntry = { clientMsgId, to: copyRecipient(to), text, ...(attachmentIds.length > 0 ? { attachmentIds: [...attachmentIds] } : {}), sentOn: undefined, waiters: [] };
    const acked = new Promise<SendMessageResponse>((resolve, reject) => entry.waiters.push({ resolve, reject }));
    // Added before the save so that send order is fixed by call order, not by when writes finish.
    this.outbox.set(clientMsgId, entry);
    try {
      await this.save();
    } catch (error) {
      // Not stored means not promised: the caller decides whether to try again.
      if (entry.sentOn === undefined) this.outbox.delete(clientMsgId);
      throw error;
    }
    if (this.connectedStream && this.outbox.has(clientMsgId)) this.transmit(entry, this.connectedStream);
    return acked;
  }

  /** Drops the current stream and connects again at once (e.g. after a network change). */
  reconnect(): void {
    this.current?.close();
    this.wakeUp?.();
  }

  /** Waits until everything changed so far is in storage. */
  flush(): Promise<void> {
    return this.save();
  }

  /** Stops for good. Unacknowledged messages stay stored (a new session sends them); their promises reject. */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.current?.close();
      this.wakeUp?.();
    }
    await this.running;
    this.unsubscribe();
    await this.save();
    for (const entry of this.outbox.values()) this.settle(entry, (waiter) => waiter.reject(new SessionClosedError()), false);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let refreshed = false;
    while (!this.closing) {
      this.setState(this.everConnected ? "reconnecting" : "connecting");
      const stream = this.client.openStream(this.resume ? { resumeFrom: new Map(this.cursorMap) } : {});
      this.current = stream;
      this.lastHeardAt = Date.now();
      const events = this.pump(stream);
      // A server that accepted the connection but never answers would otherwise hold us forever.
      const connectTimer = setTimeout(() => stream.close(), this.connectTimeoutMs);
      let heartbeat: NodeJS.Timeout | undefined;
      let readyOk = false;
      try {
        const ready = await stream.ready;
        clearTimeout(connectTimer);
        readyOk = true;
        this.everConnected = true;
        heartbeat = this.keepAlive(stream, ready.heartbeatIntervalMs);
        if (!this.resume) for (const head of ready.heads) this.cursorMap.set(head.conversationId, head.seq);
        this.resume = true;
        attempt = 0;
        refreshed = false;
        this.connectedStream = stream;
        this.setState("connected");
        void this.save();
        for (const entry of this.outbox.values()) this.transmit(entry, stream);
      } catch {
        // The reason is on `closed`, below.
      }
      const error = await stream.closed;
      clearTimeout(connectTimer);
      clearInterval(heartbeat);
      await events;
      this.connectedStream = undefined;
      this.current = undefined;
      if (this.closing) break;
      if (error && isTokenExpired(error)) {
        try {
          await this.client.refreshOnce();
          // At once the first time; a fresh token refused again (clock skew) waits like any failure.
          if (!refreshed) {
            refreshed = true;
            continue;
          }
        } catch (refreshError) {
          if (isAuthFailure(refreshError)) return this.fail(refreshError);
        }
      } else if (error && isAuthFailure(error)) {
        return this.fail(error);
      }
      if (!readyOk) attempt++;
      const delayMs = this.goAwayDelayMs ?? this.nextDelay(attempt);
      this.goAwayDelayMs = undefined;
      this.setState("reconnecting", error, delayMs);
      await this.sleep(delayMs);
    }
    this.setState("closed");
  }

  /**
   * Heartbeats at the interval the server asks for, and drops the stream when nothing at all has come
   * back for two intervals: a network that vanishes without a FIN or RST leaves a stream that looks
   * open forever, and only silence gives it away.
   */
  private keepAlive(stream: DeviceStream, intervalMs: number): NodeJS.Timeout | undefined {
    if (intervalMs <= 0) return undefined;
    const timer = setInterval(() => {
      if (Date.now() - this.lastHeardAt > 2 * intervalMs + 1_000) stream.close();
      else stream.heartbeat();
    }, intervalMs);
    timer.unref?.();
    return timer;
  }

  /** Logged out for good: the messages stay stored for the session that follows a new login. */
  private fail(error: unknown): void {
    this.closing = true;
    const failure = ConnectError.from(error);
    for (const entry of this.outbox.values()) this.settle(entry, (waiter) => waiter.reject(failure), false);
    this.setState("closed", failure);
  }

  /** Full jitter: anywhere in [0, cap), so clients cut off together don't come back together. */
  private nextDelay(attempt: number): number {
    const cap = Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** Math.min(attempt, 30));
    return Math.floor(this.random() * cap);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }

  private async pump(stream: DeviceStream): Promise<void> {
    try {
      for await (const event of stream) {
        this.lastHeardAt = Date.now();
        switch (event.kind) {
          case "message":
            this.cursorMap.set(event.message.conversationId, event.message.seq);
            this.emit("message", event.message);
            void this.save();
            break;
          case "caught-up":
            this.emit("caught-up", undefined);
            break;
          case "receipt":
            this.emit("receipt", event.receipt);
            break;
          case "typing":
            this.emit("typing", event.typing);
            break;
          case "presence":
            this.emit("presence", event.presence);
            break;
          case "conversation":
            this.emit("conversation", event.conversation);
            break;
          case "frame":
            if (event.frame.frame.case === "goAway") this.goAwayDelayMs = Math.floor(this.random() * (event.frame.frame.value.reconnectAfterMs || this.backoff.initialMs));
            break;
        }
      }
    } catch {
      // The stream's end is handled by run() through `closed`.
    }
  }

  private transmit(entry: OutboxEntry, stream: DeviceStream): void {
    if (entry.sentOn === stream) return;
    entry.sentOn = stream;
    stream.send(entry.to, entry.text, entry.clientMsgId, entry.attachmentIds).then(
      (ack) => this.settle(entry, (waiter) => waiter.resolve(ack), true),
      (error: unknown) => {
        if (entry.sentOn !== stream) return;
        if (!(error instanceof SendRejectedError)) return; // the stream ended: the next one re-sends it
        if (!isTransientRejection(error.status)) return this.settle(entry, (waiter) => waiter.reject(error), true);
        // Stays first in line for this stream; retried after a pause rather than at once into the same limit.
        entry.sentOn = undefined;
        setTimeout(() => {
          if (this.connectedStream === stream && this.outbox.has(entry.clientMsgId)) this.transmit(entry, stream);
        }, this.nextDelay(1)).unref?.();
      },
    );
  }

  private settle(entry: OutboxEntry, action: (waiter: OutboxEntry["waiters"][number]) => void, done: boolean): void {
    if (done) {
      if (this.outbox.get(entry.clientMsgId) !== entry) return;
      this.outbox.delete(entry.clientMsgId);
      void this.save();
    }
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const waiter of waiters) action(waiter);
  }

  private setState(state: ConnectionState, error?: Error, delayMs?: number): void {
    if (state === this.stateValue && error === undefined && delayMs === undefined) return;
    this.stateValue = state;
    this.emit("connection", { state, error, delayMs });
  }

  private emit<K extends keyof ChatSessionEvents>(kind: K, value: ChatSessionEvents[K]): void {
    for (const listener of this.listeners.get(kind) ?? []) {
      try {
        (listener as (value: ChatSessionEvents[K]) => void)(value);
      } catch (error) {
        if (kind !== "error") this.emit("error", error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  /**
   * Coalesces saves: every caller gets a promise for a write that includes its change, and bursts
   * (one message event per received message) become one write per storage round trip.
   */
  private save(): Promise<void> {
    if (!this.saveScheduled) {
      const write = this.saving.then(() => {
        this.saveScheduled = undefined;
        return this.storage.set(this.storageKey, this.snapshot() as unknown as JsonValue);
      });
      this.saveScheduled = write;
      this.saving = write.catch((error: unknown) => this.emit("error", error instanceof Error ? error : new Error(String(error))));
    }
    return this.saveScheduled;
  }

  private snapshot(): StoredState {
    const session: Session | undefined = this.client.isLoggedIn ? this.client.session : undefined;
    return {
      session: session ? (toJson(SessionSchema, session) as JsonValue) : undefined,
      cursors: Object.fromEntries([...this.cursorMap].map(([conversationId, seq]) => [conversationId, seq.toString()])),
      outbox: [...this.outbox.values()].map(({ clientMsgId, to, text, attachmentIds }) => ({ clientMsgId, to, text, ...(attachmentIds ? { attachmentIds: [...attachmentIds] } : {}) })),
    };
  }
}

function copyRecipient(to: Recipient): Recipient {
  return "conversationId" in to ? { conversationId: to.conversationId } : { recipientUserId: to.recipientUserId };
}

/** Failures that retrying (or refreshing) can't fix: the user must log in again. */
function isAuthFailure(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unauthenticated || code === Code.PermissionDenied;
}
