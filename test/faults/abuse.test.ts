import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { randomBytes, randomUUID } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { SendRejectedError } from "../../clients/sdk/index.js";
import { ErrorDetailSchema, ErrorReason } from "../../gen/chat/v1/errors_pb.js";
import { expectChatError } from "../support/errors.js";
import { removeDir, startServer, type ServerProcess } from "../support/server-process.js";
import { assertAudit } from "../support/audit.js";
import { newUser, otherDevice } from "../support/users.js";
import { connectStreamHeaders } from "../support/raw-connect.js";
import { waitFor } from "../support/wait.js";
import { startTraffic, trackDevice } from "./helpers.js";

/**
 * Abuse: a flooding client, ten thousand connections at once, oversize frames and random
 * bytes on the port. Each case runs next to normal group traffic and ends with the delivery audit of
 * that traffic; the gateway must stay up and keep serving throughout.
 */

const MAX_REQUEST_BYTES = 64 * 1024;
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** An empty SETTINGS frame: length 0, type 4, flags 0, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

async function healthy(server: ServerProcess): Promise<boolean> {
  const response = await fetch(`${server.url}/healthz`).catch(() => undefined);
  return response?.ok === true;
}

/** A raw TCP connection: what it received, and when it was closed. */
function rawConnection(port: number, first: Buffer | ((socket: net.Socket) => void)) {
  const socket = net.connect(port, "127.0.0.1");
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.once("connect", () => (typeof first === "function" ? first(socket) : socket.write(first)));
  return { socket, received: () => Buffer.concat(received), closed };
}

/** HTTP/2 frame types in the bytes a server sent (after nothing: the server speaks first in h2 too). */
function http2FrameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let offset = 0; offset + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(offset, 3);
    types.push(bytes[offset + 3]!);
    offset += 9 + length;
  }
  return types;
}

describe("abuse: the gateway stays up, keeps serving others, and answers with typed errors", () => {
  let server: ServerProcess;
  let limited: ServerProcess;

  beforeAll(async () => {
    [server, limited] = await Promise.all([
      startServer({ env: { CHAT_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES), CHAT_HELLO_TIMEOUT_MS: "5000" } }),
      // The gateway's real token bucket, small: 5 a second, 10 at once.
      startServer({ env: { CHAT_SEND_RATE: "5", CHAT_SEND_BURST: "10" } }),
    ]);
  }, 120_000);
  afterAll(async () => {
    for (const gateway of [server, limited]) {
      if (!gateway) continue;
      await gateway.kill("SIGKILL");
      removeDir(gateway.dataDir);
    }
  });

  it("a client flooding sends gets RESOURCE_EXHAUSTED / RATE_LIMITED, while another user's concurrent sends all succeed", async () => {
    const [flooder, calm, reader1, reader2] = await Promise.all(["flooder", "calm", "reader1", "reader2"].map((name) => newUser(limited.url, name)));
    // Normal traffic here is the calm user's sends and everyone's receiving: started without its own
    // sender loop (pause long, stopped at once) so the group only carries what the test sends.
    const { group } = await calm.groups.createGroup({ name: "flooded", memberUserIds: [flooder.userId, reader1.userId, reader2.userId] });
    const conversationId = group!.groupId;
    const devices = await Promise.all([calm, flooder, reader1, reader2].map((client, index) => trackDevice(`member${index}`, client)));
    try {
      await waitFor(() => devices.every((device) => device.session.state === "connected"), 60_000, "the devices to connect");
      // The sends come from second devices of the two users (the tracked devices only receive), on plain
      // streams: a ChatSession would quietly retry a rate-limited send, hiding the refusal.
      const [floodDevice, calmDevice] = await Promise.all([otherDevice(flooder), otherDevice(calm)]);
      const floodStream = floodDevice.openStream();
      const calmStream = calmDevice.openStream();
      await Promise.all([floodStream.ready, calmStream.ready]);
      const floodCount = 300;
      const afterFloodId = randomUUID();
      // Ten sends (the burst) from the calm user at the same moment as the flood: each user has a bucket of its own.
      const [flood, calmSends] = await Promise.all([
        Promise.allSettled(Array.from({ length: floodCount }, (_, i) => floodStream.send({ conversationId }, `flood ${i}`))),
        Promise.allSettled(Array.from({ length: 10 }, (_, i) => calmStream.send({ conversationId }, `calm ${i}`))),
      ]);
      expect(calmSends.filter((result) => result.status === "rejected")).toEqual([]);
      const calmAcks = calmSends.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
      const accepted = flood.filter((result) => result.status === "fulfilled").map((result) => result.value);
      const refused = flood.filter((result): result is PromiseRejectedResult => result.status === "rejected").map((result) => result.reason as unknown);
      // The burst (10) plus what the rate (5/s) refills while 300 sends are handled: most must be refused.
      expect(accepted.length).toBeGreaterThanOrEqual(10);
      expect(refused.length).toBeGreaterThan(floodCount / 2);
      for (const error of refused) {
        expect(error).toBeInstanceOf(SendRejectedError);
        const status = (error as SendRejectedError).status;
        expect({ code: status.code, reason: status.reason }).toEqual({ code: Code.ResourceExhausted, reason: ErrorReason.RATE_LIMITED });
        expect(status.message).toMatch(/wait \d+ ms/);
      }
      // A unary flood gets the same, with the time to wait (the bucket may have refilled a little meanwhile).
      const unaryFlood = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => floodDevice.send({ conversationId }, `unary flood ${i}`)));
      accepted.push(...unaryFlood.flatMap((result) => (result.status === "fulfilled" ? [result.value] : [])));
      const unaryRefused = unaryFlood.filter((result): result is PromiseRejectedResult => result.status === "rejected");
      expect(unaryRefused.length).toBeGreaterThan(20);
      for (const { reason } of unaryRefused) {
        const unary = await expectChatError(Promise.reject(reason), Code.ResourceExhausted, ErrorReason.RATE_LIMITED);
        expect(Number(unary.findDetails(ErrorDetailSchema)[0]?.metadata.retry_after_ms)).toBeGreaterThan(0);
      }
      // The flooder's stream is still usable once it slows down.
      let afterFlood: Awaited<ReturnType<typeof floodStream.send>> | undefined;
      await waitFor(
        async () => Boolean((afterFlood = await floodStream.send({ conversationId }, "after the flood", afterFloodId))),
        30_000,
        "a send after the flood",
      );
      floodStream.close();
      calmStream.close();

      const acked = [...calmAcks, ...accepted, afterFlood!].map((ack) => ({ conversationId, messageId: ack.message!.messageId, seq: ack.message!.seq }));
      const history = await calm.allMessages(conversationId);
      // Nothing refused was stored: history is the group's creation events plus exactly what was acked (and the last send).
      const texts = history.map((message) => message.text);
      expect(texts.filter((text) => text.startsWith("flood ") || text.startsWith("unary flood ")).length).toBe(accepted.length);
      expect(texts.filter((text) => text.startsWith("calm ")).length).toBe(10);
      const last = Number(history[history.length - 1]!.seq);
      await waitFor(() => devices.every((device) => device.messages.some((message) => Number(message.seq) >= last)), 60_000, "every member to receive everything");
      assertAudit({ conversationId, acked, devices: devices.map((device) => device.record()), history });
    } finally {
      await Promise.all(devices.map((device) => device.close()));
    }
  }, 120_000);

  it("ten thousand connections opened at once: every one is served, a normal client is served during and after, and all close cleanly", async () => {
    const members = await Promise.all(["a", "b", "c"].map((name) => newUser(server.url, `many_${name}`)));
    const traffic = await startTraffic(members, { pauseMs: 50, name: "many" });
    try {
      const openFds = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(/^process_open_fds (\d+)/m.exec(text)?.[1]);
      };
      const baselineFds = await openFds();
      const h2Count = 8_000;
      const wsCount = 2_000;
      // h2c with prior knowledge: the preface and an empty SETTINGS; a served session answers with its SETTINGS.
      const h2 = Array.from({ length: h2Count }, () => rawConnection(server.port, Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS])));
      // WebSocket: the GraphQL upgrade, answered by 101 Switching Protocols.
      const upgrade = () =>
        Buffer.from(
          "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
        );
      const ws = Array.from({ length: wsCount }, () => rawConnection(server.port, upgrade()));
      const served = () => ({
        h2: h2.filter((connection) => http2FrameTypes(connection.received()).includes(4)).length,
        ws: ws.filter((connection) => connection.received().subarray(0, 12).toString() === "HTTP/1.1 101").length,
      });
      // A normal client, on a connection of its own, is served while they are all open.
      // While 10,000 SYNs arrive at once the kernel's accept queue overflows and may reset a connection
      // (seen: ECONNRESET on the sign-up); a real client reconnects, so a transport error is retried on
      // a new connection. Typed errors from the gateway are not retried.
      const resets: string[] = [];
      await waitFor(
        async () => {
          try {
            const during = await newUser(server.url, "during");
            await expect(during.send({ recipientUserId: members[0]!.userId }, "while ten thousand are open")).resolves.toMatchObject({ duplicate: false });
            return true;
          } catch (error) {
            if (!(error instanceof ConnectError) || ![Code.Aborted, Code.Unavailable, Code.Unknown].includes(error.code)) throw error;
            resets.push(error.message);
            return false;
          }
        },
        60_000,
        () => `a normal client to be served while the 10,000 connect (transport errors so far: ${resets.join("; ")})`,
      );
      if (resets.length) console.info(`10k connections: the normal client was reset ${resets.length} time(s) before being served: ${resets.join("; ")}`);
      await waitFor(() => served().h2 === h2Count && served().ws === wsCount, 90_000, () => `all 10,000 to be served (${JSON.stringify(served())})`);
      expect(await healthy(server)).toBe(true);
      const heldFds = await openFds();
      expect(heldFds - baselineFds).toBeGreaterThanOrEqual(h2Count + wsCount);

      // The clients go away; the gateway lets go of every one of them.
      for (const connection of [...h2, ...ws]) connection.socket.end();
      await Promise.all([...h2, ...ws].map((connection) => connection.closed));
      await waitFor(async () => (await openFds()) < baselineFds + 100, 60_000, "the gateway to close its side of the 10,000 connections");
      const after = await newUser(server.url, "after");
      await expect(after.send({ recipientUserId: members[1]!.userId }, "after the ten thousand")).resolves.toMatchObject({ duplicate: false });
      await traffic.stop();
      const report = await traffic.audit();
      expect(report.acked).toBeGreaterThan(0);
    } finally {
      await traffic.close();
    }
  }, 180_000);

  it("oversize frames get typed errors (Connect stream envelope, unary body, gRPC, GraphQL HTTP and WebSocket) and the gateway stays up", async () => {
    const members = await Promise.all(["a", "b", "c"].map((name) => newUser(server.url, `big_${name}`)));
    const traffic = await startTraffic(members, { name: "big" });
    const token = members[0]!.session.accessToken;
    try {
      // 1. A Connect stream envelope declaring 4 GiB - 1: refused on the header, before any of it is read.
      const declared = Buffer.alloc(5);
      declared.writeUInt32BE(0xffffffff, 1);
      const streamEnd = await rawConnectStream(server.url, token, declared);
      expect(streamEnd.error?.code).toBe("resource_exhausted");
      expect(streamEnd.error?.details?.map((detail) => detail.type)).toContain("chat.v1.ErrorDetail");
      // ... and one actually carrying more than the limit.
      const carried = Buffer.alloc(5 + MAX_REQUEST_BYTES * 2, 0x41);
      carried[0] = 0;
      carried.writeUInt32BE(MAX_REQUEST_BYTES * 2, 1);
      const carriedEnd = await rawConnectStream(server.url, token, carried);
      expect(carriedEnd.error?.code).toBe("resource_exhausted");
      expect(carriedEnd.error?.details?.map((detail) => detail.type)).toContain("chat.v1.ErrorDetail");

      // 2. A unary Connect body over the limit (a valid SendMessage with a huge text field).
      const unary = await fetch(`${server.url}/chat.v1.MessagingService/SendMessage`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ clientMsgId: randomUUID(), conversationId: traffic.conversationId, text: "y".repeat(MAX_REQUEST_BYTES * 2) }),
      });
      const unaryBody = (await unary.json()) as { code?: string };
      expect({ status: unary.status, code: unaryBody.code }).toMatchObject({ code: "resource_exhausted" });

      // 3. The same over gRPC.
      const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      try {
        const metadata = new grpc.Metadata();
        metadata.set("authorization", `Bearer ${token}`);
        const failure = await new Promise<grpc.ServiceError | null>((resolve) =>
          client.makeUnaryRequest(
            "/chat.v1.MessagingService/SendMessage",
            (bytes: Buffer) => bytes,
            (bytes: Buffer) => bytes,
            Buffer.alloc(MAX_REQUEST_BYTES * 2, 0x0a),
            metadata,
            (error) => resolve(error),
          ),
        );
        expect(failure?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      } finally {
        client.close();
      }

      // 4. GraphQL over HTTP with a body over the limit.
      const graphqlHttp = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `{ __typename }`, variables: { pad: "z".repeat(MAX_REQUEST_BYTES * 2) } }),
      });
      expect(graphqlHttp.status).toBe(413);

      // 5. A graphql-ws message over the limit: the socket is closed with 1009 (message too big).
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/graphql`, "graphql-transport-ws");
      const closeCode = await new Promise<number>((resolve, reject) => {
        socket.once("error", () => undefined);
        socket.once("close", (code) => resolve(code));
        socket.once("open", () => {
          socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
          socket.once("message", () =>
            socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "subscription { __typename }", extensions: { pad: "w".repeat(MAX_REQUEST_BYTES * 2) } } })),
          );
        });
        setTimeout(() => reject(new Error("the oversize graphql-ws message did not close the socket")), 30_000);
      });
      expect(closeCode).toBe(1009);

      expect(await healthy(server)).toBe(true);
      await traffic.stop();
      await traffic.audit();
    } finally {
      await traffic.close();
    }
  }, 120_000);

  it("random bytes on the port (raw TCP, after the HTTP/2 preface, after a WebSocket upgrade): the connection is closed, the gateway keeps serving", async () => {
    const members = await Promise.all(["a", "b", "c"].map((name) => newUser(server.url, `noise_${name}`)));
    const traffic = await startTraffic(members, { name: "noise" });
    try {
      const rounds = 40;
      // Bytes that cannot start a valid request: the first byte is never a letter of an HTTP method nor 'P' of the preface.
      const garbage = () => {
        const bytes = randomBytes(256 + Math.floor(Math.random() * 4096));
        bytes[0] = 0x00;
        return bytes;
      };
      const rawTcp = Array.from({ length: rounds }, () => rawConnection(server.port, garbage()));
      // After a valid preface, garbage where frames should be: a GOAWAY (type 7) and the close.
      // The first byte 0xff makes the first frame header claim over 16 MB, past any allowed frame size,
      // so the server must react at once rather than wait for the rest of a frame.
      const afterPreface = Array.from({ length: rounds }, () => {
        const bytes = garbage();
        bytes[0] = 0xff;
        return rawConnection(server.port, Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS, bytes]));
      });
      // After a completed WebSocket upgrade, garbage where WebSocket frames should be.
      const afterUpgrade = Array.from({ length: rounds }, () =>
        rawConnection(server.port, (socket) => {
          socket.write(
            "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
          );
          let sent = false;
          socket.on("data", (chunk: Buffer) => {
            if (sent || !chunk.toString("latin1").startsWith("HTTP/1.1 101")) return;
            sent = true;
            // 0x?F: reserved opcode bits, RSV set, no mask: invalid from a client in every way.
            const bytes = garbage();
            bytes[0] = 0x7f;
            socket.write(bytes);
          });
        }),
      );
      const all = [...rawTcp, ...afterUpgrade];
      const closedCount = () => all.filter((connection) => connection.socket.closed || connection.socket.destroyed).length;
      // The server closes them: the test never ends these sockets itself.
      await waitFor(() => closedCount() === all.length, 60_000, () => `the server to close all ${all.length} garbage connections (${closedCount()} closed)`);
      // HTTP/2 garbage gets a GOAWAY (the close itself is the known bug below).
      const goaways = () => afterPreface.filter((connection) => http2FrameTypes(connection.received()).includes(7)).length;
      await waitFor(() => goaways() === rounds, 60_000, () => `a GOAWAY on all ${rounds} HTTP/2 connections sent garbage (${goaways()})`);
      for (const connection of afterPreface) connection.socket.destroy();
      for (const connection of afterUpgrade) expect(connection.received().subarray(0, 12).toString()).toBe("HTTP/1.1 101");
      // Garbage where a request line should be is answered, every time, before the close.
      const statusLines = rawTcp.map((connection) => connection.received().toString("latin1").split("\r\n")[0]);
      expect(statusLines).toEqual(rawTcp.map(() => "HTTP/1.1 400 Bad Request"));
      expect(await healthy(server)).toBe(true);
      // The group's traffic carries on after all that: more of its sends are acknowledged.
      const ackedBefore = traffic.acked().length;
      await waitFor(
        () => traffic.acked().length >= ackedBefore + members.length,
        30_000,
        () => `${members.length} more acknowledged sends of the normal traffic (${traffic.acked().length - ackedBefore} so far)`,
      );
      await traffic.stop();
      await traffic.audit();
    } finally {
      await traffic.close();
    }
  }, 120_000);

  /**
   * RFC 9113 5.4.1: after a connection error the endpoint sends GOAWAY and MUST close the connection.
   * nghttp2 sends the GOAWAY but Node leaves the socket open, so the gateway closes connections that
   * hold no stream once they have been idle (CHAT_IDLE_CONNECTION_TIMEOUT_MS, short here).
   */
  it("answers garbage after the HTTP/2 preface with a GOAWAY and closes the connection", async () => {
    const server = await startServer({ env: { CHAT_IDLE_CONNECTION_TIMEOUT_MS: "2000" } });
    onTestFinished(async () => {
      await server.kill("SIGKILL");
      removeDir(server.dataDir);
    });
    const garbage = randomBytes(1024);
    garbage[0] = 0xff;
    const connection = rawConnection(server.port, Buffer.concat([HTTP2_PREFACE, EMPTY_SETTINGS, garbage]));
    try {
      await waitFor(() => http2FrameTypes(connection.received()).includes(7), 30_000, "the GOAWAY");
      await waitFor(() => connection.socket.closed, 20_000, "the gateway to close the connection after its GOAWAY");
    } finally {
      connection.socket.destroy();
    }
  }, 60_000);
});

/**
 * Writes raw bytes on a Connect device stream and reads up to the end-of-stream message. The stream is
 * then reset: a body bigger than the flow-control window can never be written out once the server has
 * stopped reading it.
 */
async function rawConnectStream(baseUrl: string, token: string, bytes: Buffer) {
  const session = http2.connect(baseUrl);
  session.on("error", () => undefined);
  try {
    const request = session.request(connectStreamHeaders(token));
    request.on("error", () => undefined);
    request.write(bytes);
    const body: Buffer[] = [];
    let end: { error?: { code: string; message: string; details?: { type: string }[] } } | undefined;
    const parse = () => {
      const all = Buffer.concat(body);
      for (let offset = 0; offset + 5 <= all.length; ) {
        const length = all.readUInt32BE(offset + 1);
        if (offset + 5 + length > all.length) break;
        if (all[offset]! & 0x02) end = JSON.parse(all.subarray(offset + 5, offset + 5 + length).toString("utf8"));
        offset += 5 + length;
      }
    };
    await new Promise<void>((resolve, reject) => {
      request.on("data", (chunk: Buffer) => {
        body.push(chunk);
        parse();
        if (end) resolve();
      });
      request.once("close", () => resolve());
      const timer = setTimeout(
        () => reject(new Error(`no end-of-stream message and no close within 30 s; received ${Buffer.concat(body).length} bytes`)),
        30_000,
      );
      timer.unref();
    });
    request.close(http2.constants.NGHTTP2_CANCEL);
    return end ?? {};
  } finally {
    session.destroy();
  }
}
