import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import {
  StreamRequestSchema,
  type ConversationEvent,
  type PresenceEvent,
  type Receipt,
  type SendMessageResponse,
  type StreamRequest,
  type StreamResponse,
  type StreamResponse_Ready,
  type TypingEvent,
} from "../../gen/chat/v1/messaging_pb.js";
import type { Status } from "../../gen/chat/v1/errors_pb.js";
import type { Message } from "../../gen/chat/v1/types_pb.js";
import { AsyncQueue } from "../../lib/async-queue.js";

export interface DeviceStreamOptions {
  /** The cursors to resume from (conversation id → last seq received). Absent: start live. */
  readonly resumeFrom?: ReadonlyMap<string, bigint>;
}

export type DeviceEvent =
  | { readonly kind: "message"; readonly message: Message }
  | { readonly kind: "caught-up" }
  | { readonly kind: "receipt"; readonly receipt: Receipt }
  | { readonly kind: "typing"; readonly typing: TypingEvent }
  | { readonly kind: "presence"; readonly presence: PresenceEvent }
  | { readonly kind: "conversation"; readonly conversation: ConversationEvent }
  | { readonly kind: "frame"; readonly frame: StreamResponse };

/** A send the server refused, with its code and machine-readable reason. */
export class SendRejectedError extends Error {
  override readonly name = "SendRejectedError";
  constructor(readonly status: Status) {
    super(status.message);
  }
}

type Opener = (requests: AsyncIterable<StreamRequest>, signal: AbortSignal) => AsyncIterable<StreamResponse>;

/**
 * One device stream. Messages come out of the async iterator in seq order per conversation, each once:
 * the stream keeps the cursor of every conversation and drops anything at or below it, so the cursor
 * map is always safe to resume from.
 */
export class DeviceStream implements AsyncIterable<DeviceEvent> {
  readonly cursors: Map<string, bigint>;
  readonly ready: Promise<StreamResponse_Ready>;
  /** Resolves when the stream has ended; with the error that ended it, if any. */
  readonly closed: Promise<Error | undefined>;
  private readonly outgoing = new AsyncQueue<StreamRequest>();
  private readonly events = new AsyncQueue<DeviceEvent>();
  private readonly pending = new Map<string, { resolve: (ack: SendMessageResponse) => void; reject: (error: Error) => void }>();
  private readonly abort = new AbortController();

  constructor(open: Opener, options: DeviceStreamOptions) {
    this.cursors = new Map(options.resumeFrom ?? []);
    const resume = options.resumeFrom
      ? { cursors: [...options.resumeFrom].map(([conversationId, seq]) => ({ conversationId, seq })) }
      : undefined;
    this.outgoing.push(create(StreamRequestSchema, { frame: { case: "hello", value: { resume, clientVersion: "sdk/0.1" } } }));
    let onReady!: (ready: StreamResponse_Ready) => void;
    let onReadyFailed!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => ((onReady = resolve), (onReadyFailed = reject)));
    this.ready.catch(() => undefined);
    this.closed = this.pump(open(this.outgoing, this.abort.signal), onReady, onReadyFailed, !options.resumeFrom);
  }

  private async pump(
    responses: AsyncIterable<StreamResponse>,
    onReady: (ready: StreamResponse_Ready) => void,
    onReadyFailed: (error: Error) => void,
    fresh: boolean,
  ): Promise<Error | undefined> {
    let failure: Error | undefined;
    try {
      for await (const response of responses) {
        const frame = response.frame;
        switch (frame.case) {
          case "ready":
            if (fresh) for (const head of frame.value.heads) this.cursors.set(head.conversationId, head.seq);
            onReady(frame.value);
            break;
          case "message": {
            const message = frame.value;
            const last = this.cursors.get(message.conversationId) ?? 0n;
            if (message.seq <= last) break;
            this.cursors.set(message.conversationId, message.seq);
            this.events.push({ kind: "message", message });
            break;
          }
          case "caughtUp":
            this.events.push({ kind: "caught-up" });
            break;
          case "receipt":
            this.events.push({ kind: "receipt", receipt: frame.value });
            break;
          case "typing":
            this.events.push({ kind: "typing", typing: frame.value });
            break;
          case "presence":
            this.events.push({ kind: "presence", presence: frame.value });
            break;
          case "conversation":
            this.events.push({ kind: "conversation", conversation: frame.value });
            break;
          case "ack":
            this.settle(frame.value.message!.clientMsgId, (p) => p.resolve(frame.value));
            break;
          case "rejected":
            // A rejected send settles its promise; any other rejected frame is an event for the app.
            if (!this.settle(frame.value.clientMsgId, (p) => p.reject(new SendRejectedError(frame.value.status!)))) {
              this.events.push({ kind: "frame", frame: response });
            }
            break;
          default:
            this.events.push({ kind: "frame", frame: response });
        }
      }
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
    }
    onReadyFailed(failure ?? new Error("the stream ended before ready"));
    for (const pending of this.pending.values()) pending.reject(failure ?? new Error("the stream ended before the ack"));
    this.pending.clear();
    this.outgoing.end();
    this.events.end(failure);
    return failure;
  }

  private settle(clientMsgId: string, action: (pending: { resolve: (ack: SendMessageResponse) => void; reject: (error: Error) => void }) => void): boolean {
    const pending = this.pending.get(clientMsgId);
    if (!pending) return false;
    this.pending.delete(clientMsgId);
    action(pending);
    return true;
  }

  /** Resolves with the ack (after the server's durable write), rejects with SendRejectedError. */
  send(to: { conversationId: string } | { recipientUserId: string }, text: string, clientMsgId: string = randomUUID(), attachmentIds: readonly string[] = []): Promise<SendMessageResponse> {
    const target = "conversationId" in to ? { case: "conversationId" as const, value: to.conversationId } : { case: "recipientUserId" as const, value: to.recipientUserId };
    return new Promise((resolve, reject) => {
      this.pending.set(clientMsgId, { resolve, reject });
      if (!this.outgoing.push(create(StreamRequestSchema, { frame: { case: "send", value: { clientMsgId, to: target, text, attachmentIds: [...attachmentIds] } } }))) {
        this.pending.delete(clientMsgId);
        reject(new Error("the stream is closed"));
      }
    });
  }

  /** Sends a raw frame. */
  sendFrame(frame: MessageInitShape<typeof StreamRequestSchema>["frame"]): boolean {
    return this.outgoing.push(create(StreamRequestSchema, { frame }));
  }

  /** The user has read up to seq: all the user's devices and the senders hear of it. */
  markRead(conversationId: string, seq: bigint): boolean {
    return this.sendFrame({ case: "read", value: { conversationId, seq } });
  }

  /** This device has everything up to seq. */
  markDelivered(conversationId: string, seq: bigint): boolean {
    return this.sendFrame({ case: "delivered", value: { conversationId, seq } });
  }

  typing(conversationId: string, typing: boolean): boolean {
    return this.sendFrame({ case: "typing", value: { conversationId, typing } });
  }

  heartbeat(): boolean {
    return this.sendFrame({ case: "heartbeat", value: {} });
  }

  /** Replaces the set of users whose presence this device follows (those on screen). */
  watchPresence(userIds: readonly string[]): boolean {
    return this.sendFrame({ case: "watchPresence", value: { userIds: [...userIds] } });
  }

  /** Waits for the next event of this kind (others are skipped). */
  async next<K extends DeviceEvent["kind"]>(kind: K, timeoutMs = 10_000): Promise<Extract<DeviceEvent, { kind: K }>> {
    const timer = setTimeout(() => this.events.end(new Error(`timed out after ${timeoutMs} ms waiting for a ${kind} event`)), timeoutMs);
    try {
      for (;;) {
        const next = await this.events.next();
        if (next.done) throw new Error(`the stream ended while waiting for a ${kind} event`);
        if (next.value.kind === kind) return next.value as Extract<DeviceEvent, { kind: K }>;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Half-closes: the server ends the stream after answering what it has. */
  end(): void {
    this.outgoing.end();
  }

  /** Cancels at once. */
  close(): void {
    this.abort.abort();
  }

  /** Breaking out of a `for await` loop leaves the stream open (iterate again to go on); close() ends it. */
  [Symbol.asyncIterator](): AsyncIterator<DeviceEvent> {
    return {
      next: () => this.events.next(),
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  /** Waits for the next `count` messages (other events are skipped). */
  async takeMessages(count: number, timeoutMs = 30_000): Promise<Message[]> {
    const taken: Message[] = [];
    if (count === 0) return taken;
    const timer = setTimeout(() => this.events.end(new Error(`timed out after ${timeoutMs} ms with ${taken.length} of ${count} messages`)), timeoutMs);
    try {
      for (;;) {
        const next = await this.events.next();
        if (next.done) throw new Error(`the stream ended with ${taken.length} of ${count} messages`);
        if (next.value.kind === "message") {
          taken.push(next.value.message);
          if (taken.length === count) return taken;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
