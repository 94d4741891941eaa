import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { StreamRequest, StreamRequest_Hello, StreamResponseSchema } from "../../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../accounts/index.js";
import { ChatError, ErrorReason, invalidArgument } from "../errors.js";
import { AsyncQueue } from "../lib/async-queue.js";
import { BusOverflowError, type BusEvent, type EventBus, type StoredMessage } from "../ports/index.js";
import { statusOf } from "./frame-status.js";
import { toMessageView } from "./message-view.js";
import type { MessagingService } from "./messaging-service.js";

export type ServerFrame = MessageInitShape<typeof StreamResponseSchema>;

export interface DeviceSessionOptions {
  readonly messaging: MessagingService;
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
}

type Work = { readonly bus: BusEvent } | { readonly reply: ServerFrame } | { readonly end: true };

const slowConsumer = (limit: number) =>
  new ChatError(
    "resource_exhausted",
    ErrorReason.SLOW_CONSUMER,
    `more than ${limit} frames waited for this device to read them; reconnect and resume from your cursor`,
  );

/**
 * One device's stream: `ready`, the catch-up it asked for, then live traffic and the answers to its
 * own frames. Live events are taken from the bus *before* the store is read, and each conversation's
 * delivered seq is tracked, so the switch from catch-up to live has no gap and no duplicate: an event
 * at or below the delivered seq is dropped, one beyond the next expected seq is preceded by the
 * missing range read from the store.
 */
export async function* runDeviceSession(
  options: DeviceSessionOptions,
  principal: Principal,
  requests: AsyncIterable<StreamRequest>,
  signal: AbortSignal,
): AsyncGenerator<ServerFrame> {
  const { messaging, bus } = options;
  const inbound = requests[Symbol.asyncIterator]();
  const hello = await firstFrame(inbound, options.helloTimeoutMs, signal);

  const subscription = bus.subscribe(principal.userId, { bufferLimit: options.outboundLimit });
  const work = new AsyncQueue<Work>(options.outboundLimit, () => slowConsumer(options.outboundLimit));
  const delivered = new Map<string, bigint>();
  const onAbort = () => work.end();
  signal.addEventListener("abort", onAbort, { once: true });
  const onShutdown = () => {
    work.push({ reply: { frame: { case: "goAway", value: { reason: "server draining", reconnectAfterMs: options.reconnectAfterMs ?? 0 } } } });
    work.push({ end: true });
  };

  try {
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

    const resume = hello.resume;
    if (resume) {
      const cursors = readCursors(resume.cursors, options.maxResumeCursors);
      for (const head of heads) {
        const from = cursors.get(head.conversationId) ?? 0n;
        delivered.set(head.conversationId, from);
        if (head.lastSeq > from) yield* catchUp(head.conversationId, undefined);
      }
      yield { frame: { case: "caughtUp", value: {} } };
    } else {
      for (const head of heads) delivered.set(head.conversationId, head.lastSeq);
    }

    void pumpBus();
    void pumpInbound();
    if (options.shutdown?.aborted) onShutdown();
    else options.shutdown?.addEventListener("abort", onShutdown, { once: true });

    for await (const item of work) {
      if ("reply" in item) {
        yield item.reply;
      } else if ("end" in item) {
        return;
      } else if (item.bus.kind === "message") {
        yield* deliverLive(item.bus.message);
      } else if (item.bus.kind === "device-revoked" && item.bus.deviceId === principal.deviceId) {
        throw new ChatError("unauthenticated", ErrorReason.DEVICE_REVOKED, "this device has logged out; log in again");
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    options.shutdown?.removeEventListener("abort", onShutdown);
    subscription.close();
    work.end();
  }

  /** Sends the stored messages after the delivered seq (and before `beforeSeq` when given). */
  async function* catchUp(conversationId: string, beforeSeq: bigint | undefined): AsyncGenerator<ServerFrame> {
    for (;;) {
      const after = delivered.get(conversationId) ?? 0n;
      const page = await messaging.readAfter(conversationId, after, beforeSeq, options.catchUpPageSize);
      for (const message of page) {
        delivered.set(conversationId, message.seq);
        yield { frame: { case: "message", value: toMessageView(message) } };
      }
      if (page.length < options.catchUpPageSize) return;
    }
  }

  async function* deliverLive(message: StoredMessage): AsyncGenerator<ServerFrame> {
    const last = delivered.get(message.conversationId) ?? 0n;
    if (message.seq <= last) return;
    if (message.seq > last + 1n) yield* catchUp(message.conversationId, message.seq);
    delivered.set(message.conversationId, message.seq);
    yield { frame: { case: "message", value: toMessageView(message) } };
  }

  async function pumpBus(): Promise<void> {
    try {
      for await (const event of subscription) if (!work.push({ bus: event })) return;
    } catch (error) {
      work.end(
        error instanceof BusOverflowError
          ? slowConsumer(options.outboundLimit)
          : new ChatError("unavailable", ErrorReason.UNAVAILABLE, "live delivery was interrupted; reconnect and resume from your cursor"),
      );
    }
  }

  async function pumpInbound(): Promise<void> {
    try {
      for (;;) {
        const next = await inbound.next();
        if (next.done) break;
        const reply = await answer(next.value);
        if (reply && !work.push({ reply })) return;
      }
      // The client closed its side: it is done with this stream.
      work.push({ end: true });
    } catch (error) {
      work.end(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async function answer(request: StreamRequest): Promise<ServerFrame | undefined> {
    const frame = request.frame;
    switch (frame.case) {
      case "send":
        try {
          const result = await messaging.send(principal, {
            clientMsgId: frame.value.clientMsgId,
            to: frame.value.to,
            text: frame.value.text,
          });
          return { frame: { case: "ack", value: result } };
        } catch (error) {
          return { frame: { case: "rejected", value: { clientMsgId: frame.value.clientMsgId, frame: "send", status: statusOf(error) } } };
        }
      case "heartbeat":
        return { frame: { case: "heartbeatAck", value: {} } };
      case "hello":
        return rejected("hello", invalidArgument(ErrorReason.MALFORMED_FRAME, "hello may only be the first frame", "hello"));
      case "delivered":
      case "read":
      case "typing":
      case "watchPresence":
        return rejected(
          frame.case,
          new ChatError("unimplemented", ErrorReason.NOT_IMPLEMENTED, `the ${frame.case} frame is not served by this server version yet`),
        );
      default:
        return rejected("", invalidArgument(ErrorReason.MALFORMED_FRAME, "the frame has no content: set one of the frame fields", "frame"));
    }
  }
}

function rejected(frame: string, error: ChatError): ServerFrame {
  return { frame: { case: "rejected", value: { frame, status: statusOf(error) } } };
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
