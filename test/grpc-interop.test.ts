import { create, fromBinary, toBinary, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import {
  GetHistoryRequestSchema,
  GetHistoryResponseSchema,
  StreamRequestSchema,
  StreamResponseSchema,
  type StreamResponse,
} from "../gen/chat/v1/messaging_pb.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

const codec = <D extends DescMessage>(schema: D) => ({
  serialize: (message: MessageShape<D>) => Buffer.from(toBinary(schema, message)),
  deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
});

/** A plain @grpc/grpc-js client: HTTP/2 with the gRPC protocol, no Connect code on the client side. */
describe("a stock @grpc/grpc-js client", () => {
  let server: ServerProcess;
  let client: grpc.Client;

  beforeAll(async () => {
    server = await startServer();
    client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  const metadataFor = (token: string) => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    return metadata;
  };

  function unary<I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, request: MessageShape<I>, metadata: grpc.Metadata) {
    const inCodec = codec(input);
    const outCodec = codec(output);
    return new Promise<MessageShape<O>>((resolve, reject) =>
      client.makeUnaryRequest(path, inCodec.serialize, outCodec.deserialize, request, metadata, { deadline: Date.now() + 10_000 }, (error, value) =>
        error ? reject(error) : resolve(value!),
      ),
    );
  }

  it("gets the same history page as the Connect client", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    for (let i = 1; i <= 7; i++) await alice.send({ recipientUserId: bob.userId }, `hello ${i}`);
    const conversation = await alice.openDirect(bob.userId);

    const overConnect = await bob.history(conversation.conversationId, { limit: 5 });
    const overGrpc = await unary(
      "/chat.v1.MessagingService/GetHistory",
      GetHistoryRequestSchema,
      GetHistoryResponseSchema,
      create(GetHistoryRequestSchema, { conversationId: conversation.conversationId, limit: 5 }),
      metadataFor(bob.session.accessToken),
    );
    expect(toJson(GetHistoryResponseSchema, overGrpc)).toEqual(toJson(GetHistoryResponseSchema, overConnect));
    expect(overGrpc.messages.map((message) => message.text)).toEqual(["hello 3", "hello 4", "hello 5", "hello 6", "hello 7"]);
    expect(overGrpc.hasMore).toBe(true);
  });

  it("gets typed errors: code and reason in the standard status details", async () => {
    const alice = await newUser(server.url, "alice");
    const error = await unary(
      "/chat.v1.MessagingService/GetHistory",
      GetHistoryRequestSchema,
      GetHistoryResponseSchema,
      create(GetHistoryRequestSchema, { conversationId: "d_not_mine", limit: 5 }),
      metadataFor(alice.session.accessToken),
    ).then(
      () => undefined,
      (failure: grpc.ServiceError) => failure,
    );
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    const details = error!.metadata.get("grpc-status-details-bin");
    expect(details).toHaveLength(1);
    // google.rpc.Status { details: [Any{type_url: ".../chat.v1.ErrorDetail", value}] }: the reason is in there.
    expect(Buffer.from(details[0] as Buffer).toString("latin1")).toContain("chat.v1.ErrorDetail");

    const missingToken = await unary(
      "/chat.v1.MessagingService/GetHistory",
      GetHistoryRequestSchema,
      GetHistoryResponseSchema,
      create(GetHistoryRequestSchema, { conversationId: "x" }),
      new grpc.Metadata(),
    ).catch((failure: grpc.ServiceError) => failure);
    expect((missingToken as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(ErrorReason.TOKEN_MISSING).toBeGreaterThan(0);
  });

  it("drives the bidirectional device stream: hello, ready, send, ack, own message", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const requestCodec = codec(StreamRequestSchema);
    const responseCodec = codec(StreamResponseSchema);
    const call = client.makeBidiStreamRequest(
      "/chat.v1.MessagingService/Stream",
      requestCodec.serialize,
      responseCodec.deserialize,
      metadataFor(alice.session.accessToken),
    );
    const frames: StreamResponse[] = [];
    const wanted = new Promise<void>((resolve, reject) => {
      call.on("data", (frame: StreamResponse) => {
        frames.push(frame);
        if (frames.some((f) => f.frame.case === "ack") && frames.some((f) => f.frame.case === "message")) resolve();
      });
      call.on("error", reject);
    });
    call.write(create(StreamRequestSchema, { frame: { case: "hello", value: {} } }));
    call.write(
      create(StreamRequestSchema, {
        frame: { case: "send", value: { clientMsgId: randomUUID(), to: { case: "recipientUserId", value: bob.userId }, text: "over grpc-js" } },
      }),
    );
    await wanted;
    call.end();
    expect(frames[0]!.frame.case).toBe("ready");
    const ack = frames.find((f) => f.frame.case === "ack")!.frame.value as { message: { text: string; seq: bigint } };
    expect(ack.message.text).toBe("over grpc-js");
    expect(ack.message.seq).toBe(1n);
    const history = await bob.allMessages(ack.message ? (frames.find((f) => f.frame.case === "message")!.frame.value as { conversationId: string }).conversationId : "");
    expect(history.map((message) => message.text)).toEqual(["over grpc-js"]);
  });
});
