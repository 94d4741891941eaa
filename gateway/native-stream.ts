import { once } from "node:events";
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { endStreamFlag, endStreamToJson, parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { respecGrpcMessage } from "./grpc-message.js";
import { MessagingService, StreamRequestSchema, StreamResponseSchema, type StreamRequest } from "../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../services/accounts/index.js";
import type { ServerFrame } from "../services/messaging/index.js";
import { bearerTokenOf } from "./authenticate.js";
import { openDeviceStream, type DeviceStreamCall, type DeviceStreamDeps, type OpenDeviceStream } from "./handlers/device-stream.js";
import { requestIdFrom } from "./request-id.js";

/**
 * `MessagingService/Stream`, the one call every native device holds open, written directly on Node's
 * HTTP/2 streams for the binary codec of the Connect, gRPC and gRPC-web protocols. The stock router
 * keeps about a dozen suspended async generators and their promises per stream and per frame: about
 * five times the CPU per message of a handler on the raw streams, and most of a device's idle memory
 * (docs/hot-path.md). The router still serves this method for what this handler declines (JSON,
 * compression, HTTP/1.1), so a client sees one service whichever way it comes in;
 * `test/stream-conformance.test.ts` holds the two to the same answers for the stock Connect, grpc-js
 * and gRPC-web clients.
 */
const DEVICE_STREAM_PATH = `/${MessagingService.typeName}/${MessagingService.method.stream.name}`;

type Wire = "connect" | "grpc" | "grpc_web";

const RESPONSE_TYPE: Record<Wire, string> = {
  connect: "application/connect+proto",
  grpc: "application/grpc+proto",
  grpc_web: "application/grpc-web+proto",
};

/** The largest deadline a client may ask for, as the router's default: no limit. */
const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;
const FLAG_COMPRESSED = 0b0000_0001;
/** Frames decoded and not yet taken by the session before the stream stops reading (HTTP/2 flow control then holds the client). */
const INBOUND_HIGH_WATER = 32;

export interface NativeStreamOptions {
  readonly deps: DeviceStreamDeps;
  readonly authenticate: (token: string | undefined) => Promise<Principal>;
  readonly maxRequestBytes: number;
  /** What a client is told for an error: the same mapping the router's handlers use. */
  readonly toClientError: (error: unknown) => ConnectError;
}

/** Returns a function that serves the stream and returns true, or returns false for the router to serve it. */
export function createNativeStreamHandler(options: NativeStreamOptions): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean {
  return (stream, headers) => {
    if (headers[":path"] !== DEVICE_STREAM_PATH || headers[":method"] !== "POST") return false;
    const wire = wireOf(headers);
    if (!wire) return false;
    serve(options, stream, headers, wire);
    return true;
  };
}

function wireOf(headers: IncomingHttpHeaders): Wire | undefined {
  const type = (headers["content-type"] ?? "").split(";", 1)[0]!.trim().toLowerCase();
  const encoded = (value: string | string[] | undefined) => value !== undefined && value !== "identity";
  switch (type) {
    case "application/connect+proto":
      return encoded(headers["connect-content-encoding"]) ? undefined : "connect";
    case "application/grpc":
    case "application/grpc+proto":
      return encoded(headers["grpc-encoding"]) ? undefined : "grpc";
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return encoded(headers["grpc-encoding"]) ? undefined : "grpc_web";
    default:
      return undefined;
  }
}

function serve(options: NativeStreamOptions, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, wire: Wire): void {
  stream.on("error", () => undefined);
  if (stream.destroyed) return;
  stream.respond({ ":status": 200, "content-type": RESPONSE_TYPE[wire] }, { waitForTrailers: wire === "grpc" });

  const timeout =
    wire === "connect"
      ? parseConnectTimeout(headerValue(headers["connect-timeout-ms"]), MAX_TIMEOUT_MS)
      : parseGrpcTimeout(headerValue(headers["grpc-timeout"]), MAX_TIMEOUT_MS);
  if (timeout.error) {
    finish(options, stream, wire, timeout.error);
    return;
  }
  const abort = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  if (timeout.timeoutMs !== undefined) {
    deadline = setTimeout(() => abort.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeout.timeoutMs);
  }
  const requests = new InboundFrames(stream, options.maxRequestBytes);
  // `on`, not `once`: close happens once anyway, and a once-wrapper is memory every idle device holds.
  stream.on("close", () => {
    requests.abandon();
    abort.abort();
  });

  const call = new NativeCall(options, stream, headerValue(headers.authorization), requests, abort.signal, wire, requestIdFrom(headerValue(headers["x-request-id"])));

  void (async () => {
    let error: unknown;
    let open: OpenDeviceStream | undefined;
    try {
      // The session's own generator, not one wrapped around it: a level less of promises per frame.
      open = await openDeviceStream(options.deps, call);
      for await (const frame of open.frames) {
        if (stream.destroyed) break;
        if (!stream.write(envelopeOf(frame))) await drained(stream);
      }
    } catch (thrown) {
      error = thrown;
    }
    try {
      await open?.close();
    } catch (thrown) {
      error ??= thrown;
    }
    clearTimeout(deadline);
    if (error === undefined && abort.signal.reason instanceof ConnectError) error = abort.signal.reason;
    finish(options, stream, wire, error);
  })();
}

/** A class, not an object of closures: one of these lives as long as each idle device's stream. */
class NativeCall implements DeviceStreamCall {
  readonly handler = "native";

  constructor(
    private readonly options: NativeStreamOptions,
    private readonly stream: ServerHttp2Stream,
    private readonly authorization: string | null,
    readonly requests: InboundFrames,
    readonly signal: AbortSignal,
    readonly surface: Wire,
    readonly streamId: string,
  ) {}

  authenticate(): Promise<Principal> {
    return this.options.authenticate(bearerTokenOf(this.authorization));
  }

  reset(): void {
    // ENHANCE_YOUR_CALM: the peer is taking too little, the same verdict as SLOW_CONSUMER.
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

const headerValue = (value: string | string[] | undefined): string | null => (Array.isArray(value) ? (value[0] ?? null) : (value ?? null));

/** Ends the response the way each protocol ends a stream: an end-stream message, trailers, or a trailer message. */
function finish(options: NativeStreamOptions, stream: ServerHttp2Stream, wire: Wire, error: unknown): void {
  if (stream.destroyed || !stream.writable) return;
  const connectError = error === undefined ? undefined : options.toClientError(error);
  switch (wire) {
    case "connect": {
      const json = JSON.stringify(endStreamToJson(new Headers(), connectError, undefined));
      stream.end(envelope(endStreamFlag, Buffer.from(json)));
      return;
    }
    case "grpc": {
      const trailers: Record<string, string> = {};
      respecGrpcMessage(setTrailerStatus(new Headers(), connectError)).forEach((value, key) => (trailers[key] = value));
      stream.once("wantTrailers", () => stream.sendTrailers(trailers));
      stream.end();
      return;
    }
    case "grpc_web":
      stream.end(envelope(trailerFlag, trailerSerialize(respecGrpcMessage(setTrailerStatus(new Headers(), connectError)))));
  }
}

function envelope(flags: number, body: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(5 + body.byteLength);
  bytes[0] = flags;
  bytes.writeUInt32BE(body.byteLength, 1);
  bytes.set(body, 5);
  return bytes;
}

/**
 * A message fanned out to many devices is one frame object (see the session's messageFrameOf), so its
 * bytes are encoded once for all of them; the three protocols frame a message the same way.
 */
const encodedShared = new WeakMap<ServerFrame, Buffer>();

export function envelopeOf(frame: ServerFrame): Buffer {
  const shared = frame.frame?.case === "message";
  if (shared) {
    const cached = encodedShared.get(frame);
    if (cached) return cached;
  }
  const bytes = envelope(0, toBinary(StreamResponseSchema, create(StreamResponseSchema, frame)));
  if (shared) encodedShared.set(frame, bytes);
  return bytes;
}

async function drained(stream: ServerHttp2Stream): Promise<void> {
  const controller = new AbortController();
  try {
    await Promise.race([once(stream, "drain", { signal: controller.signal }), once(stream, "close", { signal: controller.signal })]);
  } catch {
    // Aborted below once one of them happened; nothing else rejects.
  } finally {
    controller.abort();
  }
}

/**
 * The request side: envelopes read from the stream and decoded, handed to the session one at a time.
 * Reading pauses while the session is behind, so a client that sends faster than it is answered is
 * held by HTTP/2 flow control rather than by this process's memory.
 */
class InboundFrames implements AsyncIterable<StreamRequest>, AsyncIterator<StreamRequest> {
  private readonly queue: StreamRequest[] = [];
  private pending: Buffer | undefined;
  private ended = false;
  private failure: Error | undefined;
  private waiting: { resolve: (result: IteratorResult<StreamRequest>) => void; reject: (error: Error) => void } | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly maxBytes: number,
  ) {
    stream.on("data", (chunk: Buffer) => this.read(chunk));
    stream.on("end", () => {
      // Node also ends the readable side of a stream whose connection dropped: only an end the client
      // sent (END_STREAM, not aborted) is the client being done.
      if (stream.aborted) this.abandon();
      else if (this.pending) this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      else this.end();
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamRequest> {
    return this;
  }

  next(): Promise<IteratorResult<StreamRequest>> {
    const item = this.queue.shift();
    if (item) {
      if (this.queue.length === 0 && this.stream.isPaused() && !this.ended) this.stream.resume();
      return Promise.resolve({ value: item, done: false });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<StreamRequest>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * The stream closed without the client ending its side (reset, lost connection): not the clean
   * end a client that is done sends, which the session treats as a goodbye (offline at once).
   */
  abandon(): void {
    this.fail(new ConnectError("the client went away", Code.Canceled));
  }

  private read(chunk: Buffer): void {
    if (this.ended) return;
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (data.length - offset >= 5) {
      const flags = data[offset]!;
      const length = data.readUInt32BE(offset + 1);
      if (length > this.maxBytes) {
        return this.fail(new ConnectError(`message size ${length} is larger than configured readMaxBytes ${this.maxBytes}`, Code.ResourceExhausted));
      }
      if (data.length - offset - 5 < length) break;
      const body = data.subarray(offset + 5, offset + 5 + length);
      offset += 5 + length;
      if (flags !== 0) {
        const what = flags & FLAG_COMPRESSED ? "a compressed message without a declared encoding" : `an envelope with flags ${flags}`;
        return this.fail(new ConnectError(`protocol error: received ${what}`, Code.InvalidArgument));
      }
      let request: StreamRequest;
      try {
        request = fromBinary(StreamRequestSchema, body);
      } catch (error) {
        return this.fail(new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument));
      }
      this.deliver(request);
    }
    if (offset < data.length) this.pending = data.subarray(offset);
    if (this.queue.length >= INBOUND_HIGH_WATER) this.stream.pause();
  }

  private deliver(request: StreamRequest): void {
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: request, done: false });
    } else this.queue.push(request);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  private fail(error: Error): void {
    if (this.ended) return;
    this.failure = error;
    this.ended = true;
    this.queue.length = 0;
    this.stream.pause();
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = undefined;
      reject(error);
    }
  }
}
