import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { ConversationChange, ReceiptKind, type StreamRequest, type StreamRequest_Hello, type SendMessageRequest, type StreamResponseSchema } from "../../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../accounts/index.js";
import { ChatError, ErrorReason, invalidArgument } from "../errors.js";
import { AsyncQueue } from "../../lib/async-queue.js";
import {
  BusOverflowError,
  noTelemetry,
  type BusEvent,
  type BusSubscription,
  type EventBus,
  type PresenceRegistry,
  type PresenceState,
  type PresenceWatch,
  type StoredMessage,
  type Surface,
  type Telemetry,
} from "../ports/index.js";
import { checkPresenceUsers, toPresenceView } from "../presence/index.js";
import type { SyncService } from "../sync/index.js";
import { toConversationView } from "./conversation-view.js";
import { statusOf } from "./frame-status.js";
import { toMessageView } from "./message-view.js";
import type { MessagingService, SendOrder, VisibleRange } from "./messaging-service.js";
import type { TypingNotifier } from "./typing.js";

export type ServerFrame = MessageInitShape<typeof StreamResponseSchema>;

export interface DeviceSessionOptions {
  readonly messaging: MessagingService;
  readonly sync: SyncService;
  readonly typing: TypingNotifier;
  readonly presence: PresenceRegistry;
  readonly bus: EventBus;
  /** How long the client may take to send `hello`. */
  readonly helloTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** Frames that may wait for a device that is not reading; past it the stream ends (it can resume). */
  readonly outboundLimit: number;
  /** How many messages one store read fetches during catch-up. */
  readonly catchUpPageSize: number;
  readonly maxResumeCursors: number;
  /** Aborted when the server is draining: the device is told to reconnect elsewhere, then the stream ends. */
  readonly shutdown?: AbortSignal;
  readonly reconnectAfterMs?: number;
  readonly telemetry?: Telemetry;
  /**
   * At a heartbeat at least this long after the last check, the session compares the heads of the
   * user's conversations with what it delivered and sends what is missing from the store. It covers
   * events the bus routed nowhere (a cluster's session registry between a Redis restart and the
   * gateways' re-registration), which would otherwise wait for the conversation's next event.
   * Absent: never.
   */
  readonly reconcileIntervalMs?: number;
}

/** Where a session comes from: the surface is a metric label, the stream id only goes into logs. */
export interface SessionOrigin {
  readonly surface: Surface;
  readonly streamId?: string;
  /**
   * Told when the device fell too far behind and the session is ending with SLOW_CONSUMER. The end is
   * itself a frame the device must read, so a transport whose writes are blocked (a full HTTP/2
   * window) should cut the stream if it is still open a little later.
   */
  readonly onSlowConsumer?: (error: ChatError) => void;
}

type Work =
  | { readonly bus: BusEvent }
  | { readonly presence: PresenceState }
  | { readonly reply: ServerFrame }
  | { readonly reconcile: true }
  | { readonly end: true };

/** Sends of one stream running at once; a device that pipelines more waits to be read. */
const MAX_SENDS_IN_FLIGHT = 256;

interface SendTail {
  /** Resolves once the send has been handed to the store (or failed before). */
  readonly submitted: Promise<void>;
  /** Resolves once its answer is queued for the device. */
  readonly answered: Promise<void>;
}

const CHANGES = { joined: ConversationChange.JOINED, left: ConversationChange.LEFT, updated: ConversationChange.UPDATED } as const;

const slowConsumer = (limit: number) =>
  new ChatError(
    "resource_exhausted",
    ErrorReason.SLOW_CONSUMER,
    `more than ${limit} frames waited for this device to read them; reconnect and resume from your cursor`,
  );

/**
 * A message fanned out to many devices is one stored object on this gateway, so its frame is built
 * once and shared; a transport may then encode it once (frames are never changed after they are made).
 */
const messageFrames = new WeakMap<StoredMessage, ServerFrame>();

function messageFrameOf(message: StoredMessage): ServerFrame {
  let frame = messageFrames.get(message);
  if (!frame) {
    frame = { frame: { case: "message", value: toMessageView(message) } };
    messageFrames.set(message, frame);
  }
  return frame;
}

/**
 * One device's stream: `ready`, the catch-up it asked for, then live traffic and the answers to its
 * own frames. Live events are taken from the bus *before* the store is read, and each conversation's
 * delivered seq is tracked, so the switch from catch-up to live has no gap and no duplicate: an event
 * at or below the delivered seq is dropped, one beyond the next expected seq is preceded by the
 * missing range read from the store (cut to what the member may see).
 */
export function runDeviceSession(
  options: DeviceSessionOptions,
  principal: Principal,
  requests: AsyncIterable<StreamRequest>,
  signal: AbortSignal,
  origin: SessionOrigin = { surface: "connect" },
): AsyncGenerator<ServerFrame> {
  return new DeviceSession(options, principal, requests, signal, origin).frames();
}

/**
 * A class rather than closures: a gateway holds tens of thousands of idle sessions, and methods are
 * shared where inner functions were a dozen closures per session (each with a property table for
 * its name under tsx).
 */
const tokenExpired = () =>
  new ChatError("unauthenticated", ErrorReason.TOKEN_EXPIRED, "the access token expired: refresh it and resume from your cursors (nothing after them is lost)");

class DeviceSession {
  private readonly telemetry: Telemetry;
  private inbound!: AsyncIterator<StreamRequest>;
  /** The seq delivered last, per conversation. */
  private readonly delivered = new Map<string, bigint>();
  private subscription!: BusSubscription;
  private work!: AsyncQueue<Work>;
  private presenceWatch: PresenceWatch | undefined;
  private closedByClient = false;
  private lastReconciled = Date.now();
  private retryTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private draining = false;
  private sendsInFlight = 0;
  /** The last send started per target (conversation or recipient), which the next one follows. */
  private readonly sendTails = new Map<string, SendTail>();
  private readonly sendSlotWaiters: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly options: DeviceSessionOptions,
    private readonly principal: Principal,
    private readonly requests: AsyncIterable<StreamRequest>,
    private readonly signal: AbortSignal,
    private readonly origin: SessionOrigin,
  ) {
    this.telemetry = options.telemetry ?? noTelemetry;
  }

  async *frames(): AsyncGenerator<ServerFrame> {
    const { options, principal, telemetry, delivered, signal } = this;
    const { messaging, bus, presence } = options;
    this.inbound = this.requests[Symbol.asyncIterator]();
    const hello = await firstFrame(this.inbound, options.helloTimeoutMs, signal);

    this.subscription = bus.subscribe(principal.userId, { bufferLimit: options.outboundLimit });
    this.work = new AsyncQueue<Work>(options.outboundLimit, () => this.stalled());
    // The session itself listens (handleEvent): no closure per session.
    signal.addEventListener("abort", this, { once: true });
    // A stream lives no longer than the access token that opened it: a token that leaked, or whose
    // device should have been logged out, stops receiving at its expiry, not only at log-out.
    if (principal.expiresAt) {
      this.expiryTimer = setTimeout(() => this.work.end(tokenExpired()), Math.max(0, principal.expiresAt.getTime() - Date.now()));
      this.expiryTimer.unref();
    }

    try {
      telemetry.deviceConnected(this.origin.surface);
      await presence.heartbeat(principal.userId, principal.deviceId);
      const heads = await messaging.heads(principal.userId);
      yield {
        frame: {
          case: "ready",
          value: {
            userId: principal.userId,
            deviceId: principal.deviceId,
            heads: heads.map((head) => ({ conversationId: head.conversationId, seq: head.lastSeq })),
            heartbeatIntervalMs: options.heartbeatIntervalMs,
            serverTime: timestampNow(),
          },
        },
      };

      if (hello.resume) {
        const cursors = readCursors(hello.resume.cursors, options.maxResumeCursors);
        for (const head of heads) {
          const from = cursors.get(head.conversationId);
          if (from !== undefined) delivered.set(head.conversationId, from);
          if (head.lastSeq > (from ?? 0n)) yield* this.catchUp(head.conversationId, head.lastSeq + 1n);
        }
        yield { frame: { case: "caughtUp", value: {} } };
      } else {
        for (const head of heads) delivered.set(head.conversationId, head.lastSeq);
      }

      void this.pumpBus();
      void this.pumpInbound();
      if (options.shutdown?.aborted) this.drain();
      else options.shutdown?.addEventListener("abort", this, { once: true });

      for await (const item of this.work) {
        if ("reply" in item) yield item.reply;
        else if ("end" in item) return;
        else if ("reconcile" in item) yield* this.reconcile();
        else if ("presence" in item) yield { frame: { case: "presence", value: toPresenceView(item.presence) } };
        // The common case, a conversation's next message, is yielded here rather than through the
        // nested generators below: each level of them costs promises and a microtask per frame.
        else if (item.bus.kind === "message" && this.followsDelivered(item.bus.message)) yield this.delivering(item.bus.message);
        else yield* this.deliverLive(item.bus);
      }
    } finally {
      signal.removeEventListener("abort", this);
      options.shutdown?.removeEventListener("abort", this);
      clearTimeout(this.retryTimer);
      clearTimeout(this.expiryTimer);
      this.subscription.close();
      if (this.presenceWatch) {
        this.presenceWatch.close();
        telemetry.presenceWatchEnded();
      }
      telemetry.deviceDisconnected(this.origin.surface);
      this.work.end();
      // A device that said goodbye goes offline now; one that vanished keeps the user online until its
      // heartbeat times out, so a dropped connection that comes straight back does not flicker.
      if (this.closedByClient) await presence.disconnect(principal.userId, principal.deviceId);
    }
  }

  /** The stream's signal ended it, or the server's shutdown signal is draining it. */
  handleEvent(event: Event): void {
    if (event.target === this.signal) this.work.end();
    else this.drain();
  }

  /**
   * Tells the device to reconnect elsewhere, then ends the stream. Sends already read are answered
   * first: their acks would otherwise be lost with the stream, and the device would send them again.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    void this.sendsSettled().then(() => this.sayGoAway());
  }

  private sayGoAway(): void {
    this.work.push({ reply: { frame: { case: "goAway", value: { reason: "server draining", reconnectAfterMs: this.options.reconnectAfterMs ?? 0 } } } });
    this.work.push({ end: true });
  }

  private stalled(): ChatError {
    const error = slowConsumer(this.options.outboundLimit);
    this.origin.onSlowConsumer?.(error);
    return error;
  }

  /** Sends the stored messages after the delivered seq and before `beforeSeq`, as far as the member may see. */
  private async *catchUp(conversationId: string, beforeSeq: bigint): AsyncGenerator<ServerFrame> {
    const { messaging } = this.options;
    let range: VisibleRange;
    try {
      range = await messaging.visibleRange(conversationId, this.principal.userId);
    } catch {
      // Not (yet) readable as a member here; the retry asks again.
      return this.retryLater();
    }
    // Exclusive: the member sees nothing from here on (they left), or the caller stops here.
    const end = range.beforeSeq !== undefined && range.beforeSeq < beforeSeq ? range.beforeSeq : beforeSeq;
    for (;;) {
      const known = this.delivered.get(conversationId) ?? 0n;
      // Seqs before the member joined are not theirs to see: the first one they may is after range.afterSeq.
      let next = (known > range.afterSeq ? known : range.afterSeq) + 1n;
      if (next < end) {
        const page = await messaging.readVisible(conversationId, range, known, beforeSeq, this.options.catchUpPageSize);
        for (const message of page) {
          // Every seq is a stored entry, so a seq the store skips is one it does not show yet (another
          // gateway's append seen out of order). Marking it delivered would lose it for good: stop,
          // and read again shortly, delivering it and what follows in order.
          if (message.seq !== next) return this.retryLater();
          yield this.delivering(message);
          next++;
        }
        if (next < end && page.length === this.options.catchUpPageSize) continue;
        if (next < end) return this.retryLater();
      }
      if (end - 1n > (this.delivered.get(conversationId) ?? 0n)) this.delivered.set(conversationId, end - 1n);
      return;
    }
  }

  /** Reads the store again soon (then less often), for entries it did not show yet. */
  private retryLater(): void {
    if (this.retryTimer || this.work.isEnded) return;
    this.retryDelayMs = Math.min(this.retryDelayMs === 0 ? 50 : this.retryDelayMs * 2, 1_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.work.push({ reconcile: true });
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Whatever the store has beyond the delivered seqs, in the same way a gap in live events is filled. */
  private async *reconcile(): AsyncGenerator<ServerFrame> {
    const retrying = this.retryDelayMs;
    for (const head of await this.options.messaging.heads(this.principal.userId)) {
      const last = this.delivered.get(head.conversationId);
      if (last === undefined || head.lastSeq > last) yield* this.catchUp(head.conversationId, head.lastSeq + 1n);
    }
    // Everything was readable this time: the next gap starts again from the shortest wait.
    if (retrying !== 0 && !this.retryTimer) this.retryDelayMs = 0;
  }

  private async *deliverLive(event: BusEvent): AsyncGenerator<ServerFrame> {
    switch (event.kind) {
      case "message":
        yield* this.deliverMessage(event.message);
        return;
      case "receipt": {
        const { receipt } = event;
        yield {
          frame: {
            case: "receipt",
            value: {
              conversationId: receipt.conversationId,
              userId: receipt.userId,
              deviceId: receipt.deviceId,
              kind: receipt.kind === "read" ? ReceiptKind.READ : ReceiptKind.DELIVERED,
              seq: receipt.seq,
              at: timestampFromDate(receipt.at),
            },
          },
        };
        return;
      }
      case "typing":
        yield {
          frame: {
            case: "typing",
            value: { conversationId: event.conversationId, userId: event.userId, typing: event.typing, expiresAt: timestampFromDate(event.expiresAt) },
          },
        };
        return;
      case "conversation":
        yield { frame: { case: "conversation", value: { change: CHANGES[event.change], conversation: toConversationView(event.conversation, []) } } };
        return;
      case "device-revoked":
        if (event.deviceId === this.principal.deviceId) {
          throw new ChatError("unauthenticated", ErrorReason.DEVICE_REVOKED, "this device has logged out; log in again");
        }
    }
  }

  private async *deliverMessage(message: StoredMessage): AsyncGenerator<ServerFrame> {
    const last = this.delivered.get(message.conversationId);
    if (last !== undefined && message.seq <= last) return;
    if (last === undefined || message.seq > last + 1n) yield* this.catchUp(message.conversationId, message.seq);
    // Otherwise an earlier seq is not readable yet: this one comes from the store, in order, after it.
    if ((this.delivered.get(message.conversationId) ?? 0n) === message.seq - 1n) yield this.delivering(message);
  }

  private followsDelivered(message: StoredMessage): boolean {
    return this.delivered.get(message.conversationId) === message.seq - 1n;
  }

  /** Records the message as delivered and returns its frame. */
  private delivering(message: StoredMessage): ServerFrame {
    this.delivered.set(message.conversationId, message.seq);
    // Measured as the frame is handed on, i.e. once the device has taken the previous one.
    this.telemetry.messageDelivered(
      { messageId: message.messageId, conversationId: message.conversationId, seq: message.seq, traceId: this.origin.streamId },
      Date.now() - message.sentAt.getTime(),
    );
    return messageFrameOf(message);
  }

  private async pumpBus(): Promise<void> {
    try {
      for await (const event of this.subscription) if (!this.work.push({ bus: event })) return;
    } catch (error) {
      this.work.end(
        error instanceof BusOverflowError
          ? this.stalled()
          : new ChatError("unavailable", ErrorReason.UNAVAILABLE, "live delivery was interrupted; reconnect and resume from your cursor"),
      );
    }
  }

  private async pumpPresence(watch: PresenceWatch): Promise<void> {
    try {
      for await (const state of watch) if (!this.work.push({ presence: state })) return;
    } catch {
      this.work.end(this.stalled());
    }
  }

  private async pumpInbound(): Promise<void> {
    try {
      for (;;) {
        if (this.draining) return;
        const next = await this.inbound.next();
        if (next.done) break;
        if (this.draining) {
          // Read after the drain began: not answered here, the device sends it again after go_away.
          return;
        }
        if (next.value.frame.case === "send") {
          await this.sendConcurrently(next.value.frame.value);
          continue;
        }
        const reply = await this.answer(next.value);
        if (reply && !this.work.push({ reply })) return;
      }
      await this.sendsSettled();
      // The client closed its side: it is done with this stream.
      this.closedByClient = true;
      this.work.push({ end: true });
    } catch (error) {
      this.work.end(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Starts a send without waiting for it, so pipelined sends share the store's batches. Sends to the
   * same target reach the store, and are answered, in the order they arrived; at most
   * MAX_SENDS_IN_FLIGHT run at once, after which reading the stream waits.
   */
  private async sendConcurrently(send: SendMessageRequest): Promise<void> {
    while (this.sendsInFlight >= MAX_SENDS_IN_FLIGHT) await new Promise<void>((resolve) => this.sendSlotWaiters.push(resolve));
    const target = `${send.to.case ?? ""}:${send.to.value ?? ""}`;
    const previous = this.sendTails.get(target);
    let submitted!: () => void;
    let answered!: () => void;
    const tail: SendTail = {
      submitted: new Promise<void>((resolve) => (submitted = resolve)),
      answered: new Promise<void>((resolve) => (answered = resolve)),
    };
    this.sendTails.set(target, tail);
    this.sendsInFlight++;
    void (async () => {
      try {
        const reply = await this.answerSend(send, { after: previous?.submitted ?? Promise.resolve(), submitted });
        await previous?.answered;
        this.work.push({ reply });
      } finally {
        answered();
        if (this.sendTails.get(target) === tail) this.sendTails.delete(target);
        this.sendsInFlight--;
        this.sendSlotWaiters.shift()?.();
        if (this.sendsInFlight === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
      }
    })();
  }

  private sendsSettled(): Promise<void> {
    if (this.sendsInFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private async answerSend(send: SendMessageRequest, order: SendOrder): Promise<ServerFrame> {
    try {
      const result = await this.options.messaging.send(
        this.principal,
        { clientMsgId: send.clientMsgId, to: send.to, text: send.text, attachmentIds: send.attachmentIds },
        this.origin.streamId,
        order,
      );
      return { frame: { case: "ack", value: result } };
    } catch (error) {
      return { frame: { case: "rejected", value: { clientMsgId: send.clientMsgId, frame: "send", status: this.rejected(error) } } };
    }
  }

  private async answer(request: StreamRequest): Promise<ServerFrame | undefined> {
    const { options, principal } = this;
    const frame = request.frame;
    try {
      switch (frame.case) {
        case "send":
          return await this.answerSend(frame.value, { after: Promise.resolve(), submitted: () => undefined });
        case "heartbeat":
          await options.presence.heartbeat(principal.userId, principal.deviceId);
          if (options.reconcileIntervalMs !== undefined && Date.now() - this.lastReconciled >= options.reconcileIntervalMs) {
            this.lastReconciled = Date.now();
            this.work.push({ reconcile: true });
          }
          return { frame: { case: "heartbeatAck", value: {} } };
        case "delivered":
          await options.sync.markDelivered(principal, frame.value.conversationId, frame.value.seq);
          return undefined;
        case "read":
          await options.sync.markRead(principal, frame.value.conversationId, frame.value.seq);
          return undefined;
        case "typing":
          await options.typing.notify(principal, frame.value.conversationId, frame.value.typing);
          return undefined;
        case "watchPresence":
          return await this.watchPresence(frame.value.userIds);
        case "hello":
          throw invalidArgument(ErrorReason.MALFORMED_FRAME, "hello may only be the first frame", "hello");
        default:
          throw invalidArgument(ErrorReason.MALFORMED_FRAME, "the frame has no content: set one of the frame fields", "frame");
      }
    } catch (error) {
      return { frame: { case: "rejected", value: { frame: frame.case ?? "", status: this.rejected(error) } } };
    }
  }

  private rejected(error: unknown) {
    const status = statusOf(error);
    this.telemetry.frameRejected(status.code ?? 0, status.reason ?? 0);
    return status;
  }

  /** Watch-on-view: only the users on the device's screen, their current state first, then changes. */
  private async watchPresence(rawUserIds: readonly string[]): Promise<undefined> {
    const { presence } = this.options;
    const userIds = checkPresenceUsers(rawUserIds, "watch_presence.user_ids");
    if (this.presenceWatch) this.presenceWatch.update(userIds);
    else {
      this.presenceWatch = presence.watch(userIds, { bufferLimit: this.options.outboundLimit });
      this.telemetry.presenceWatchStarted();
      void this.pumpPresence(this.presenceWatch);
    }
    for (const state of await presence.lookup(userIds)) this.work.push({ presence: state });
    return undefined;
  }
}

async function firstFrame(inbound: AsyncIterator<StreamRequest>, timeoutMs: number, signal: AbortSignal): Promise<StreamRequest_Hello> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(invalidArgument(ErrorReason.HELLO_REQUIRED, `send a hello frame within ${timeoutMs} ms of opening the stream`, "hello")),
      timeoutMs,
    );
  });
  try {
    const first = await Promise.race([inbound.next(), timeout]);
    if (signal.aborted || first.done) {
      throw invalidArgument(ErrorReason.HELLO_REQUIRED, "the stream closed before its hello frame", "hello");
    }
    if (first.value.frame.case !== "hello") {
      throw invalidArgument(ErrorReason.HELLO_REQUIRED, "the first frame of the stream must be hello", "hello");
    }
    return first.value.frame.value;
  } finally {
    clearTimeout(timer);
  }
}

function readCursors(cursors: readonly { conversationId: string; seq: bigint }[], max: number): Map<string, bigint> {
  if (cursors.length > max) {
    throw invalidArgument(ErrorReason.INVALID_CURSOR, `resume with at most ${max} cursors`, "resume.cursors", { max: String(max) });
  }
  const map = new Map<string, bigint>();
  for (const cursor of cursors) {
    if (!cursor.conversationId) throw invalidArgument(ErrorReason.INVALID_CURSOR, "a cursor has no conversation_id", "resume.cursors");
    const known = map.get(cursor.conversationId);
    if (known === undefined || cursor.seq > known) map.set(cursor.conversationId, cursor.seq);
  }
  return map;
}
