import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { StreamRequestSchema, StreamResponseSchema, type StreamResponse } from "../gen/chat/v1/messaging_pb.js";

/**
 * The device stream over Connect (`application/connect+proto`) written straight on node:http2: the
 * same bytes as the stock Connect client, at a fraction of its cost per message (the stock client
 * costs about as much per message as the server), so that the load generator measures the server.
 */
export class LeanStream {
  readonly ready: Promise<void>;
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    baseUrl: string,
    token: string,
    onFrame: (frame: StreamResponse) => void,
    options: { resume?: { conversationId: string; seq: bigint }[] } = {},
  ) {
    this.session = http2.connect(baseUrl);
    this.session.on("error", () => undefined);
    this.stream = this.session.request({
      ":method": "POST",
      ":path": "/chat.v1.MessagingService/Stream",
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
      authorization: `Bearer ${token}`,
    });
    let onReady!: () => void;
    let onFail!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => ((onReady = resolve), (onFail = reject)));
    this.ready.catch(() => undefined);
    this.stream.on("close", () => {
      onFail(new Error(`stream closed before ready (status ${this.stream.rstCode ?? "?"})`));
      this.session.close();
    });
    this.stream.on("error", () => undefined);
    this.stream.on("data", (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 5) {
        const length = this.pending.readUInt32BE(1);
        if (this.pending.length < 5 + length) break;
        const flags = this.pending[0]!;
        const body = this.pending.subarray(5, 5 + length);
        this.pending = this.pending.subarray(5 + length);
        // Flag 2 is the end-of-stream envelope (JSON error and trailers); the stream closes right after.
        if (flags & 2) continue;
        const frame = fromBinary(StreamResponseSchema, body);
        if (frame.frame.case === "ready") onReady();
        onFrame(frame);
      }
    });
    this.write({ case: "hello", value: { resume: options.resume ? { cursors: options.resume } : undefined, clientVersion: "bench/0.1" } });
  }

  send(conversationId: string, text: string, clientMsgId: string): void {
    this.write({ case: "send", value: { clientMsgId, to: { case: "conversationId", value: conversationId }, text } });
  }

  close(): void {
    this.stream.close();
    this.session.close();
  }

  private write(frame: MessageInitShape<typeof StreamRequestSchema>["frame"]): void {
    const body = toBinary(StreamRequestSchema, create(StreamRequestSchema, { frame }));
    const envelope = Buffer.allocUnsafe(5 + body.length);
    envelope[0] = 0;
    envelope.writeUInt32BE(body.length, 1);
    envelope.set(body, 5);
    this.stream.write(envelope);
  }
}
