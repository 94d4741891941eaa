import Database from "better-sqlite3";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, SendRejectedError } from "../clients/sdk/index.js";
import { ErrorDetailSchema, ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { expectChatError } from "./support/errors.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { connectStreamHeaders } from "./support/raw-connect.js";
import { newUser } from "./support/users.js";

/** Delivery contract item 7: every invalid request gets a typed error and changes nothing. */
describe("bad input", () => {
  let server: ServerProcess;
  let db: Database.Database;
  let alice: ChatClient;
  let bob: ChatClient;
  let conversationId: string;

  const storedRows = () => {
    const count = (table: string) => Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number | bigint }).n);
    return { messages: count("messages"), conversations: count("conversations"), users: count("users") };
  };

  /** Runs the bad request and checks that the store did not change. */
  async function changesNothing(badRequest: () => Promise<void>): Promise<void> {
    const before = storedRows();
    await badRequest();
    expect(storedRows()).toEqual(before);
  }

  beforeAll(async () => {
    server = await startServer();
    alice = await newUser(server.url, "alice");
    bob = await newUser(server.url, "bob");
    conversationId = (await alice.send({ recipientUserId: bob.userId }, "hello")).message!.conversationId;
    db = new Database(server.dbPath, { readonly: true, fileMustExist: true });
  });
  afterAll(async () => {
    db.close();
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("refuses text over 100,000 characters, on the stream and in a unary call, and takes exactly 100,000", async () => {
    const stream = alice.openStream();
    await stream.ready;
    const tooLong = "x".repeat(100_001);
    await changesNothing(async () => {
      const error = await stream.send({ conversationId }, tooLong).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(SendRejectedError);
      expect((error as SendRejectedError).status).toMatchObject({ code: Code.InvalidArgument, reason: ErrorReason.TEXT_TOO_LONG, field: "text" });
      await expectChatError(alice.send({ conversationId }, tooLong), Code.InvalidArgument, ErrorReason.TEXT_TOO_LONG);
      // 100,001 characters of which the last is an emoji (two UTF-16 units): still too long.
      await expectChatError(alice.send({ conversationId }, "x".repeat(100_000) + "🙂"), Code.InvalidArgument, ErrorReason.TEXT_TOO_LONG);
    });
    const atLimit = await stream.send({ conversationId }, "🙂".repeat(100_000));
    expect(atLimit.message!.text).toHaveLength(200_000);
    stream.close();
  });

  it("refuses empty and blank text", async () => {
    await changesNothing(async () => {
      await expectChatError(alice.send({ conversationId }, ""), Code.InvalidArgument, ErrorReason.TEXT_EMPTY);
      await expectChatError(alice.send({ conversationId }, " \n\t "), Code.InvalidArgument, ErrorReason.TEXT_EMPTY);
    });
  });

  it("refuses a bad client_msg_id and a send with no target", async () => {
    await changesNothing(async () => {
      await expectChatError(alice.send({ conversationId }, "hi", "short"), Code.InvalidArgument, ErrorReason.CLIENT_MSG_ID_INVALID);
      await expectChatError(
        alice.messaging.sendMessage({ clientMsgId: randomUUID(), text: "to nobody" }),
        Code.InvalidArgument,
        ErrorReason.INVALID_ARGUMENT,
      );
    });
  });

  it("refuses a missing, forged, expired or logged-out token, on unary calls and on the stream", async () => {
    const anonymous = new ChatClient({ baseUrl: server.url });
    await changesNothing(async () => {
      await expectChatError(anonymous.messaging.getHistory({ conversationId }), Code.Unauthenticated, ErrorReason.TOKEN_MISSING);
      await expectChatError(
        anonymous.messaging.sendMessage({ clientMsgId: randomUUID(), to: { case: "conversationId", value: conversationId }, text: "x" }),
        Code.Unauthenticated,
        ErrorReason.TOKEN_MISSING,
      );
      const anonymousStream = anonymous.openStream();
      await expectChatError(anonymousStream.ready, Code.Unauthenticated, ErrorReason.TOKEN_MISSING);

      // Forged: the claims say Bob, the signature is Alice's.
      const [version, , aliceSignature] = alice.session.accessToken.split(".");
      const bobClaims = bob.session.accessToken.split(".")[1];
      const forger = new ChatClient({ baseUrl: server.url });
      Object.assign(forger, { currentSession: { ...alice.session, accessToken: `${version}.${bobClaims}.${aliceSignature}` } });
      await expectChatError(forger.history(conversationId), Code.Unauthenticated, ErrorReason.TOKEN_INVALID);
      Object.assign(forger, { currentSession: { ...alice.session, accessToken: "not-a-token" } });
      await expectChatError(forger.history(conversationId), Code.Unauthenticated, ErrorReason.TOKEN_INVALID);
    });

    const leaving = new ChatClient({ baseUrl: server.url });
    await leaving.logIn(alice.session.user!.username, "correct horse battery");
    const token = leaving.session.accessToken;
    const openStream = leaving.openStream();
    await openStream.ready;
    await leaving.logOut();
    // The open stream of the logged-out device ends too.
    expect(await openStream.closed).toBeInstanceOf(ConnectError);
    Object.assign(leaving, { currentSession: { ...alice.session, accessToken: token } });
    await changesNothing(() => expectChatError(leaving.history(conversationId), Code.Unauthenticated, ErrorReason.DEVICE_REVOKED).then(() => undefined));
  });

  it("rate-limits a user who floods sends, with the time to wait, and leaves other users alone", async () => {
    // The slowest refill there is (one a second), so a loaded machine's pauses between the flood and
    // the check that follows it do not refill the bucket.
    const limited = await startServer({ env: { CHAT_SEND_RATE: "1", CHAT_SEND_BURST: "10" } });
    try {
      const flooder = await newUser(limited.url, "flooder");
      const calm = await newUser(limited.url, "calm");
      const target = await newUser(limited.url, "target");
      const conversation = await flooder.openDirect(target.userId);
      const stream = flooder.openStream();
      await stream.ready;
      const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => stream.send({ conversationId: conversation.conversationId }, `flood ${i}`)));
      const accepted = results.filter((result) => result.status === "fulfilled");
      const refused = results.filter((result): result is PromiseRejectedResult => result.status === "rejected").map((result) => result.reason as SendRejectedError);
      expect(accepted.length).toBeGreaterThanOrEqual(10);
      expect(accepted.length).toBeLessThan(13);
      for (const error of refused) expect(error.status).toMatchObject({ code: Code.ResourceExhausted, reason: ErrorReason.RATE_LIMITED });
      const unary = await expectChatError(flooder.send({ conversationId: conversation.conversationId }, "one more"), Code.ResourceExhausted, ErrorReason.RATE_LIMITED);
      expect(Number(unary.findDetails(ErrorDetailSchema)[0]?.metadata.retry_after_ms)).toBeGreaterThan(0);
      // Only what was accepted is stored, and another user sends freely meanwhile.
      expect((await target.allMessages(conversation.conversationId)).length).toBe(accepted.length);
      await expect(calm.send({ recipientUserId: target.userId }, "hello")).resolves.toMatchObject({ duplicate: false });
      stream.close();
    } finally {
      await limited.kill("SIGTERM");
      removeDir(limited.dataDir);
    }
  });

  it("refuses an expired token", async () => {
    const shortLived = await startServer({ env: { CHAT_ACCESS_TOKEN_TTL_SECONDS: "3" } });
    try {
      const carol = await newUser(shortLived.url, "carol");
      await carol.history((await carol.openDirect((await newUser(shortLived.url, "dave")).userId)).conversationId);
      await new Promise((resolve) => setTimeout(resolve, 3_100));
      await expectChatError(carol.accounts.getMe({}), Code.Unauthenticated, ErrorReason.TOKEN_EXPIRED);
      // The refresh token still works and gives a fresh access token; a used refresh token does not.
      const used = carol.session.refreshToken;
      await carol.refresh();
      await expectChatError(carol.accounts.refresh({ refreshToken: used }), Code.Unauthenticated, ErrorReason.REFRESH_TOKEN_INVALID);
      await expect(carol.accounts.getMe({})).resolves.toMatchObject({ deviceId: carol.deviceId });
    } finally {
      await shortLived.kill("SIGTERM");
      removeDir(shortLived.dataDir);
    }
  });

  it("refuses reading or sending into a conversation the caller is not in", async () => {
    const mallory = await newUser(server.url, "mallory");
    const stream = mallory.openStream();
    await stream.ready;
    await changesNothing(async () => {
      await expectChatError(mallory.history(conversationId), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
      await expectChatError(mallory.send({ conversationId }, "let me in"), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
      await expectChatError(mallory.messaging.getConversation({ conversationId }), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
      const rejected = await stream.send({ conversationId }, "let me in").catch((failure: SendRejectedError) => failure);
      expect((rejected as SendRejectedError).status).toMatchObject({ code: Code.PermissionDenied, reason: ErrorReason.NOT_A_MEMBER });
      // A conversation id that does not exist answers the same: ids reveal nothing.
      await expectChatError(mallory.history("d_doesnotexist"), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    });
    // Resuming with someone else's conversation in the cursor map yields nothing of it.
    const resumed = mallory.openStream({ resumeFrom: new Map([[conversationId, 0n]]) });
    const first = await (async () => {
      for await (const event of resumed) return event;
    })();
    expect(first).toEqual({ kind: "caught-up" });
    resumed.close();
    stream.close();
  });

  it("refuses a page size over the cap and contradictory cursors", async () => {
    await changesNothing(async () => {
      const error = await expectChatError(alice.history(conversationId, { limit: 201 }), Code.InvalidArgument, ErrorReason.PAGE_SIZE_TOO_LARGE);
      expect(error.findDetails(ErrorDetailSchema)[0]?.metadata.max).toBe("200");
      await expectChatError(alice.history(conversationId, { beforeSeq: 5n, afterSeq: 1n }), Code.InvalidArgument, ErrorReason.INVALID_CURSOR);
    });
    await expect(alice.history(conversationId, { limit: 200 })).resolves.toBeDefined();
  });

  it("ends a stream whose frame is not a valid protobuf message, with a typed error", async () => {
    await changesNothing(async () => {
      for (const payload of [Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0x12, 0x40, 0x01])]) {
        const end = await rawConnectStream(server.url, alice.session.accessToken, [envelope(payload)]);
        expect(end.error?.code).toBe("invalid_argument");
        expect(end.reasons).toContain(ErrorReason.MALFORMED_FRAME);
      }
      // A frame claiming more bytes than the size limit is refused before it is read.
      const huge = Buffer.alloc(5);
      huge.writeUInt32BE(64 * 1024 * 1024, 1);
      const end = await rawConnectStream(server.url, alice.session.accessToken, [huge]);
      expect(end.error?.code).toBe("resource_exhausted");
    });
  });

  it("answers an undecodable unary request with a typed error, over Connect and over gRPC", async () => {
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    await changesNothing(async () => {
      const overConnect = await fetch(`${server.url}/chat.v1.MessagingService/SendMessage`, {
        method: "POST",
        headers: { "content-type": "application/proto", authorization: `Bearer ${alice.session.accessToken}` },
        body: garbage,
      });
      expect(overConnect.status).toBe(400);
      const body = (await overConnect.json()) as { code: string; details: { type: string; value: string }[] };
      expect(body.code).toBe("invalid_argument");
      expect(body.details.map((detail) => [detail.type, Buffer.from(detail.value, "base64")[1]])).toEqual([["chat.v1.ErrorDetail", ErrorReason.MALFORMED_FRAME]]);

      const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      try {
        const metadata = new grpc.Metadata();
        metadata.set("authorization", `Bearer ${alice.session.accessToken}`);
        const failure = await new Promise<grpc.ServiceError>((resolve) =>
          client.makeUnaryRequest("/chat.v1.MessagingService/SendMessage", () => garbage, (bytes: Buffer) => bytes, null, metadata, (error) => resolve(error!)),
        );
        expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(Buffer.from(failure.metadata.get("grpc-status-details-bin")[0] as Buffer).toString("latin1")).toContain("chat.v1.ErrorDetail");
      } finally {
        client.close();
      }
    });
  });

  it("answers a missing or empty id with INVALID_ARGUMENT naming the field, before any look-up", async () => {
    await changesNothing(async () => {
      const missing = async (call: Promise<unknown>, field: string) => {
        const error = await expectChatError(call, Code.InvalidArgument, ErrorReason.INVALID_ARGUMENT);
        expect(error.findDetails(ErrorDetailSchema)[0]?.field).toBe(field);
      };
      await missing(alice.messaging.getHistory({}), "conversation_id");
      await missing(alice.messaging.getConversation({}), "conversation_id");
      await missing(alice.messaging.openDirectConversation({}), "user_id");
      await missing(alice.messaging.sendMessage({ clientMsgId: randomUUID(), to: { case: "conversationId", value: "" }, text: "to nowhere" }), "conversation_id");
      await missing(alice.messaging.sendMessage({ clientMsgId: randomUUID(), to: { case: "recipientUserId", value: " " }, text: "to nobody" }), "recipient_user_id");
      await missing(alice.sync.markRead({ seq: 1n }), "conversation_id");
      await missing(alice.groups.getGroup({}), "group_id");
      await missing(alice.groups.addMembers({ groupId: "", userIds: [bob.userId] }), "group_id");
    });
  });

  it("answers a request body that is not JSON with a typed error carrying the ErrorDetail", async () => {
    await changesNothing(async () => {
      const response = await fetch(`${server.url}/chat.v1.MessagingService/SendMessage`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${alice.session.accessToken}` },
        body: "{ this is not json",
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { code: string; details?: { type: string; value: string }[] };
      expect(body.code).toBe("invalid_argument");
      expect(body.details?.map((detail) => [detail.type, Buffer.from(detail.value, "base64")[1]])).toEqual([["chat.v1.ErrorDetail", ErrorReason.MALFORMED_FRAME]]);
    });
  });

  it("writes grpc-message as the gRPC spec says: a grpc-js client reads ':' and '<' as they were", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const failure = await new Promise<grpc.ServiceError>((resolve) =>
        client.makeUnaryRequest("/chat.v1.AccountsService/GetMe", () => Buffer.alloc(0), (bytes: Buffer) => bytes, null, new grpc.Metadata(), (error) => resolve(error!)),
      );
      expect(failure.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(failure.details).toContain("'Authorization: Bearer <token>'");
    } finally {
      client.close();
    }
  });

  it("requires hello first, and rejects an empty frame without ending the stream", async () => {
    // Field 6 (heartbeat), empty: a valid frame, but not hello.
    const heartbeatFirst = await rawConnectStream(server.url, alice.session.accessToken, [envelope(Buffer.from([0x32, 0x00]))]);
    expect(heartbeatFirst.error?.code).toBe("invalid_argument");
    expect(heartbeatFirst.reasons).toContain(ErrorReason.HELLO_REQUIRED);

    const stream = alice.openStream();
    await stream.ready;
    expect(stream.sendFrame({ case: undefined })).toBe(true);
    for await (const event of stream) {
      if (event.kind !== "frame") continue;
      expect(event.frame.frame.case).toBe("rejected");
      expect(event.frame.frame.value).toMatchObject({ status: { code: Code.InvalidArgument, reason: ErrorReason.MALFORMED_FRAME } });
      break;
    }
    // Still open: a send works after the rejected frame.
    await expect(stream.send({ conversationId }, "still here")).resolves.toMatchObject({ duplicate: false });
    stream.close();
  });
});

function envelope(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Speaks the Connect streaming protocol by hand, to send bytes no generated client would. */
async function rawConnectStream(baseUrl: string, token: string, chunks: Buffer[]) {
  const session = http2.connect(baseUrl);
  try {
    const request = session.request(connectStreamHeaders(token));
    for (const chunk of chunks) request.write(chunk);
    const body: Buffer[] = [];
    request.on("data", (chunk: Buffer) => body.push(chunk));
    await new Promise((resolve, reject) => {
      request.on("end", resolve);
      request.on("error", reject);
      setTimeout(() => request.end(), 200);
    });
    const bytes = Buffer.concat(body);
    let offset = 0;
    let end: { error?: { code: string; message: string; details?: { type: string; value: string }[] } } = {};
    while (offset + 5 <= bytes.length) {
      const flags = bytes[offset]!;
      const length = bytes.readUInt32BE(offset + 1);
      const data = bytes.subarray(offset + 5, offset + 5 + length);
      if (flags & 0x02) end = JSON.parse(data.toString("utf8"));
      offset += 5 + length;
    }
    const reasons = (end.error?.details ?? [])
      .filter((detail) => detail.type === "chat.v1.ErrorDetail")
      .map((detail) => Buffer.from(detail.value, "base64"))
      // ErrorDetail field 1 (reason) is the first varint: tag 0x08.
      .map((raw) => (raw[0] === 0x08 ? raw[1]! : 0));
    return { error: end.error, reasons };
  } finally {
    session.close();
  }
}
