import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorDetailSchema, ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { MessagingService, StreamRequestSchema, StreamResponseSchema, type StreamResponse } from "../gen/chat/v1/messaging_pb.js";
import { AsyncQueue } from "../lib/async-queue.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";
import { waitFor } from "./support/wait.js";

/**
 * The device stream is served by a hand-written HTTP/2 handler (gateway/native-stream.ts) unless
 * CHAT_STREAM_HANDLER=router. Every case here runs against both, through the three stock clients,
 * and must give the same answers: the handler is a drop-in for the router, not a dialect of it.
 */

type ClientKind = "connect" | "grpc-web" | "grpc";
type Handler = "native" | "router";
type RequestInit = MessageInitShape<typeof StreamRequestSchema>;

interface Outcome {
  readonly code: Code | 0;
  readonly reason?: ErrorReason;
  readonly message?: string;
}

/** One open stream, the same shape whichever client library is under it. */
interface OpenStream {
  send(request: RequestInit): void;
  /** Half-closes: the client has nothing more to send. */
  end(): void;
  cancel(): void;
  readonly frames: AsyncQueue<StreamResponse>;
  readonly outcome: Promise<Outcome>;
}

interface OpenOptions {
  readonly token?: string;
  readonly timeoutMs?: number;
  readonly requestId?: string;
}

const MAX_REQUEST_BYTES = 64 * 1024;

function outcomeOf(error: unknown): Outcome {
  const connectError = ConnectError.from(error);
  return { code: connectError.code, reason: connectError.findDetails(ErrorDetailSchema)[0]?.reason, message: connectError.rawMessage };
}

function openWithConnectClient(transport: Transport, options: OpenOptions): OpenStream {
  const client = createClient(MessagingService, transport);
  const requests = new AsyncQueue<RequestInit>();
  const frames = new AsyncQueue<StreamResponse>();
  const abort = new AbortController();
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.requestId) headers["x-request-id"] = options.requestId;
  const outcome = (async (): Promise<Outcome> => {
    try {
      for await (const frame of client.stream(requests, { headers, timeoutMs: options.timeoutMs, signal: abort.signal })) frames.push(frame);
      return { code: 0 };
    } catch (error) {
      return outcomeOf(error);
    } finally {
      frames.end();
    }
  })();
  return { send: (request) => requests.push(request), end: () => requests.end(), cancel: () => abort.abort(), frames, outcome };
}

function openWithGrpcJs(client: grpc.Client, options: OpenOptions): OpenStream {
  const metadata = new grpc.Metadata();
  if (options.token) metadata.set("authorization", `Bearer ${options.token}`);
  if (options.requestId) metadata.set("x-request-id", options.requestId);
  const call = client.makeBidiStreamRequest(
    "/chat.v1.MessagingService/Stream",
    (request: RequestInit) => Buffer.from(toBinary(StreamRequestSchema, create(StreamRequestSchema, request))),
    (bytes: Buffer) => fromBinary(StreamResponseSchema, bytes),
    metadata,
    options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs },
  );
  const frames = new AsyncQueue<StreamResponse>();
  call.on("data", (frame: StreamResponse) => frames.push(frame));
  const outcome = new Promise<Outcome>((resolve) => {
    call.on("error", () => undefined);
    call.on("status", (status: grpc.StatusObject) => {
      frames.end();
      if (status.code === grpc.status.OK) return resolve({ code: 0 });
      // The reason travels in grpc-status-details-bin, a google.rpc.Status holding chat.v1.ErrorDetail.
      const trailer = new Headers();
      for (const [key, value] of Object.entries(status.metadata.getMap())) trailer.set(key, Buffer.isBuffer(value) ? value.toString("base64") : value);
      trailer.set("grpc-status", String(status.code));
      trailer.set("grpc-message", encodeURIComponent(status.details));
      const error = findTrailerError(trailer);
      resolve({ code: status.code as number as Code, reason: error?.findDetails(ErrorDetailSchema)[0]?.reason, message: status.details });
    });
  });
  return { send: (request) => call.write(request), end: () => call.end(), cancel: () => call.cancel(), frames, outcome };
}

async function nextFrame(stream: OpenStream, what: string): Promise<StreamResponse> {
  const next = await Promise.race([
    stream.frames.next(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} frame within 10 s`)), 10_000)),
  ]);
  if (next.done) throw new Error(`the stream ended before its ${what} frame (${JSON.stringify(await stream.outcome)})`);
  return next.value;
}

/** Frames until one of this case, skipping presence and the like that a live stream may carry. */
type FrameCase = NonNullable<StreamResponse["frame"]["case"]>;
type FrameValue<C extends FrameCase> = Extract<StreamResponse["frame"], { case: C }>["value"];

async function frameOf<C extends FrameCase>(stream: OpenStream, kind: C): Promise<FrameValue<C>> {
  for (;;) {
    const { frame } = await nextFrame(stream, kind);
    if (frame.case === kind) return frame.value as FrameValue<C>;
  }
}

const hello: RequestInit = { frame: { case: "hello", value: { clientVersion: "conformance" } } };

describe.each<Handler>(["native", "router"])("the device stream served by the %s handler", (handler) => {
  let server: ServerProcess;
  let grpcClient: grpc.Client;
  const transports = {} as Record<"connect" | "grpc-web", Transport>;

  beforeAll(async () => {
    server = await startServer({ env: { CHAT_STREAM_HANDLER: handler, CHAT_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) } });
    transports.connect = createConnectTransport({ baseUrl: server.url, httpVersion: "2" });
    transports["grpc-web"] = createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" });
    grpcClient = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    grpcClient.close();
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  const open = (kind: ClientKind, options: OpenOptions): OpenStream =>
    kind === "grpc" ? openWithGrpcJs(grpcClient, options) : openWithConnectClient(transports[kind], options);

  describe.each<ClientKind>(["connect", "grpc-web", "grpc"])("through the stock %s client", (kind) => {
    it("carries messages both ways and ends cleanly when the client half-closes; the call is served by the handler under test", async () => {
      const alice = await newUser(server.url, "alice");
      const bob = await newUser(server.url, "bob");
      const requestId = `conformance-${randomUUID()}`;
      const aliceStream = open(kind, { token: alice.session.accessToken, requestId });
      const bobStream = open(kind, { token: bob.session.accessToken });
      aliceStream.send(hello);
      bobStream.send(hello);
      expect((await frameOf(aliceStream, "ready")).userId).toBe(alice.userId);
      expect((await frameOf(bobStream, "ready")).userId).toBe(bob.userId);

      aliceStream.send({ frame: { case: "send", value: { clientMsgId: `c-${randomUUID()}`, to: { case: "recipientUserId", value: bob.userId }, text: "hello through " + kind } } });
      const ack = await frameOf(aliceStream, "ack");
      expect(ack.message?.seq).toBe(1n);
      const received = await frameOf(bobStream, "message");
      expect({ text: received.text, seq: received.seq, sender: received.senderUserId }).toEqual({ text: "hello through " + kind, seq: 1n, sender: alice.userId });

      // Bob answers; Alice gets it on her open stream.
      bobStream.send({ frame: { case: "send", value: { clientMsgId: `c-${randomUUID()}`, to: { case: "conversationId", value: received.conversationId }, text: "back" } } });
      expect((await frameOf(aliceStream, "message")).text).toBe("back");

      aliceStream.end();
      bobStream.end();
      expect(await aliceStream.outcome).toEqual({ code: 0 });
      expect(await bobStream.outcome).toEqual({ code: 0 });
      const opened = server.logs.find((line) => line.event === "stream_open" && line.streamId === requestId);
      expect(opened, "the gateway logged the stream's opening").toBeDefined();
      expect(opened!.handler).toBe(handler);
    });

    it("refuses a missing or bad token with UNAUTHENTICATED and its reason", async () => {
      const missing = open(kind, {});
      missing.send(hello);
      expect(await missing.outcome).toMatchObject({ code: Code.Unauthenticated, reason: ErrorReason.TOKEN_MISSING });
      const bad = open(kind, { token: "not-a-token" });
      bad.send(hello);
      expect(await bad.outcome).toMatchObject({ code: Code.Unauthenticated, reason: ErrorReason.TOKEN_INVALID });
    });

    it("refuses a stream that does not start with hello, and a frame over the size limit, with their codes and reasons", async () => {
      const alice = await newUser(server.url, "alice");
      const noHello = open(kind, { token: alice.session.accessToken });
      noHello.send({ frame: { case: "heartbeat", value: {} } });
      expect(await noHello.outcome).toMatchObject({ code: Code.InvalidArgument, reason: ErrorReason.HELLO_REQUIRED });

      const oversize = open(kind, { token: alice.session.accessToken });
      oversize.send(hello);
      await frameOf(oversize, "ready");
      oversize.send({ frame: { case: "send", value: { clientMsgId: `c-${randomUUID()}`, to: { case: "recipientUserId", value: alice.userId }, text: "x".repeat(MAX_REQUEST_BYTES + 1) } } });
      expect(await oversize.outcome).toMatchObject({ code: Code.ResourceExhausted });
    });

    it("answers a send it refuses in-band (rejected, with code and reason) and keeps the stream open", async () => {
      const alice = await newUser(server.url, "alice");
      const stream = open(kind, { token: alice.session.accessToken });
      stream.send(hello);
      await frameOf(stream, "ready");
      stream.send({ frame: { case: "send", value: { clientMsgId: `c-${randomUUID()}`, to: { case: "conversationId", value: "d_not_mine" }, text: "hi" } } });
      const rejected = await frameOf(stream, "rejected");
      expect({ code: rejected.status?.code, reason: rejected.status?.reason }).toEqual({ code: Code.PermissionDenied, reason: ErrorReason.NOT_A_MEMBER });
      stream.send({ frame: { case: "heartbeat", value: {} } });
      await frameOf(stream, "heartbeatAck");
      stream.end();
      expect(await stream.outcome).toEqual({ code: 0 });
    });

    it("ends a stream past its deadline with DEADLINE_EXCEEDED", async () => {
      const alice = await newUser(server.url, "alice");
      const stream = open(kind, { token: alice.session.accessToken, timeoutMs: 700 });
      stream.send(hello);
      await frameOf(stream, "ready");
      const outcome = await stream.outcome;
      expect(outcome.code).toBe(Code.DeadlineExceeded);
    });

    it("ends the server's side of a stream the client cancels: the session closes and the device's registration goes", async () => {
      const alice = await newUser(server.url, "alice");
      const requestId = `cancel-${randomUUID()}`;
      const stream = open(kind, { token: alice.session.accessToken, requestId });
      stream.send(hello);
      await frameOf(stream, "ready");
      stream.cancel();
      expect((await stream.outcome).code).toBe(Code.Canceled);
      await waitFor(() => server.logs.some((line) => line.event === "stream_close" && line.streamId === requestId), 5_000, "the server closed the cancelled stream");
    });
  });
});
