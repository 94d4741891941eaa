import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ChatClient, ChatSession, createFileStorage, createMemoryStorage, OutboxFullError, SendRejectedError, SessionClosedError, type ConnectionChange } from "../clients/sdk/index.js";
import { SessionSchema } from "../gen/chat/v1/accounts_pb.js";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import type { Message } from "../gen/chat/v1/types_pb.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

const FAST_BACKOFF = { initialMs: 20, maxMs: 300 };

async function waitFor(what: string | (() => string), condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await sleep(10);
  }
}

function collect(session: ChatSession, conversationId: string): Message[] {
  const received: Message[] = [];
  session.on("message", (message) => {
    if (message.conversationId === conversationId) received.push(message);
  });
  return received;
}

describe("SDK: outbox", () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.kill("SIGTERM")));
    dirs.forEach(removeDir);
  });

  it("sends what an app left in its outbox after the app restarts, each message once", async () => {
    let server = await startServer();
    servers.push(server);
    dirs.push(server.dataDir);
    const storageDir = mkdtempSync(join(tmpdir(), "chat-sdk-"));
    dirs.push(storageDir);
    const storagePath = join(storageDir, "alice.json");
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const to = { conversationId: conversation.conversationId };
    const bobSession = await ChatSession.open(bob, { backoff: FAST_BACKOFF });
    const received = collect(bobSession, conversation.conversationId);

    const first = await ChatSession.open(alice, { storage: createFileStorage(storagePath), backoff: FAST_BACKOFF });
    await waitFor("alice to connect", () => first.state === "connected");
    await waitFor("bob to connect", () => bobSession.state === "connected");
    const outcomes: Promise<unknown>[] = [];
    const sendAll = (from: number, to_: number) => {
      for (let i = from; i < to_; i++) outcomes.push(first.send(to, `message ${i}`).catch((error: unknown) => error));
    };
    // Some acknowledged, some cut off in flight, then some queued while the server is down.
    sendAll(0, 10);
    await waitFor("a first ack", () => first.pendingCount < 10, 10_000);
    await server.kill("SIGKILL");
    sendAll(10, 30);
    await first.flush();
    const pending = first.pendingCount;
    expect(pending).toBeGreaterThanOrEqual(20);
    const stored = JSON.parse(readFileSync(storagePath, "utf8")) as { "chat-session": { outbox: { text: string }[]; session: unknown } };
    expect(stored["chat-session"].outbox).toHaveLength(pending);
    expect(stored["chat-session"].session).toBeDefined();
    const cursorsAtExit = new Map(first.cursors);
    await first.close();
    const settled = await Promise.all(outcomes);
    expect(settled.filter((outcome) => outcome instanceof SessionClosedError)).toHaveLength(pending);

    server = await startServer({ dataDir: server.dataDir, port: server.port });
    servers.push(server);
    // A new process: no login, only the stored tokens.
    const restarted = await ChatSession.open(new ChatClient({ baseUrl: server.url }), { storage: createFileStorage(storagePath), backoff: FAST_BACKOFF });
    expect(new Map(restarted.cursors)).toEqual(cursorsAtExit);
    expect(restarted.pendingCount).toBe(pending);
    await waitFor("the outbox to drain", () => restarted.pendingCount === 0);
    // One more after the 30: a message stored or delivered twice would have come before it.
    await restarted.send(to, "marker");
    await waitFor(() => `the marker after 30 messages (bob has ${received.length})`, () => received.some((message) => message.text === "marker"));
    expect(received.map((message) => message.text)).toEqual([...Array.from({ length: 30 }, (_, i) => `message ${i}`), "marker"]);
    expect((await alice.allMessages(conversation.conversationId)).map((message) => message.text)).toEqual(received.map((message) => message.text));
    await restarted.flush();
    expect((JSON.parse(readFileSync(storagePath, "utf8")) as typeof stored)["chat-session"].outbox).toEqual([]);
    await Promise.all([restarted.close(), bobSession.close()]);
  });

  it("rejects a message the server refuses for good and sends the rest", async () => {
    const server = await startServer();
    servers.push(server);
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const bobSession = await ChatSession.open(bob, { backoff: FAST_BACKOFF });
    const received = collect(bobSession, conversation.conversationId);
    const aliceSession = await ChatSession.open(alice, { backoff: FAST_BACKOFF });
    await waitFor("both to connect", () => aliceSession.state === "connected" && bobSession.state === "connected");

    const texts = ["one", "two", "x".repeat(100_001), "three", "four"];
    const outcomes = await Promise.allSettled(texts.map((text) => aliceSession.send({ conversationId: conversation.conversationId }, text)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const refused = (outcomes[2] as PromiseRejectedResult).reason as SendRejectedError;
    expect(refused).toBeInstanceOf(SendRejectedError);
    expect(refused.status.reason).toBe(ErrorReason.TEXT_TOO_LONG);
    expect(aliceSession.pendingCount).toBe(0);
    await waitFor("bob to receive 4 messages", () => received.length >= 4);
    expect(received.map((message) => message.text)).toEqual(["one", "two", "three", "four"]);
    await Promise.all([aliceSession.close(), bobSession.close()]);
  });

  it("refuses sends past the outbox limit with a clear error", async () => {
    // Nothing listens on port 9: the session keeps retrying and the outbox only fills.
    const client = new ChatClient({ baseUrl: "http://127.0.0.1:9" });
    const storage = createMemoryStorage();
    client.restore(create(SessionSchema, { deviceId: "d", accessToken: "a", refreshToken: "r", user: { userId: "u", username: "u" } }));
    const session = await ChatSession.open(client, { storage, maxOutbox: 3, backoff: FAST_BACKOFF });
    const queued = [1, 2, 3].map((i) => session.send({ conversationId: "c" }, `m${i}`).catch((error: unknown) => error));
    await expect(session.send({ conversationId: "c" }, "one too many")).rejects.toBeInstanceOf(OutboxFullError);
    expect(session.pendingCount).toBe(3);
    await session.close();
    for (const outcome of await Promise.all(queued)) expect(outcome).toBeInstanceOf(SessionClosedError);
  });

  it("refreshes an expired access token and carries on", async () => {
    // Long enough that a refreshed token outlives its retried call on a loaded machine.
    const ttlSeconds = 4;
    const server = await startServer({ env: { CHAT_ACCESS_TOKEN_TTL_SECONDS: String(ttlSeconds) } });
    servers.push(server);
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const storage = createMemoryStorage();
    const aliceSession = await ChatSession.open(alice, { storage, backoff: FAST_BACKOFF });
    await waitFor("alice to connect", () => aliceSession.state === "connected");
    const firstRefreshToken = alice.session.refreshToken;
    await sleep(ttlSeconds * 1000 + 200);
    // A unary call with the expired token is refreshed and retried.
    const conversation = await alice.openDirect(bob.userId);
    expect(alice.session.refreshToken).not.toBe(firstRefreshToken);
    await sleep(ttlSeconds * 1000 + 200);
    // So is a new stream.
    aliceSession.reconnect();
    const ack = await aliceSession.send({ conversationId: conversation.conversationId }, "after expiry");
    expect(ack.message!.text).toBe("after expiry");
    expect(aliceSession.state).toBe("connected");
    await aliceSession.flush();
    const saved = (await storage.get("chat-session")) as { session: { refreshToken: string } };
    expect(saved.session.refreshToken).toBe(alice.session.refreshToken);
    await aliceSession.close();
  }, 30_000);

  it("stops for good when the device is logged out elsewhere", async () => {
    const server = await startServer();
    servers.push(server);
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const changes: ConnectionChange[] = [];
    const storage = createMemoryStorage();
    const session = await ChatSession.open(alice, { storage, backoff: FAST_BACKOFF });
    session.on("connection", (change) => changes.push(change));
    await waitFor("alice to connect", () => session.state === "connected");
    // The same device's tokens in another client, which logs out: the device is revoked.
    const sameDevice = new ChatClient({ baseUrl: server.url });
    sameDevice.restore(alice.session);
    await sameDevice.logOut();
    session.reconnect();
    await waitFor("the session to give up", () => session.state === "closed");
    expect(ConnectError.from(changes.at(-1)!.error).code).toBe(Code.Unauthenticated);
    await expect(session.send({ conversationId: "c" }, "too late")).rejects.toBeInstanceOf(SessionClosedError);
    await session.close();
  });

  it("writes the file storage atomically and reads it back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chat-sdk-"));
    dirs.push(dir);
    const path = join(dir, "nested", "state.json");
    const storage = createFileStorage(path);
    expect(await storage.get("k")).toBeUndefined();
    await Promise.all(Array.from({ length: 20 }, (_, i) => storage.set("k", { i })));
    await storage.set("other", [1, "two", null]);
    expect(readdirSync(join(dir, "nested"))).toEqual(["state.json"]);
    const reopened = createFileStorage(path);
    expect(await reopened.get("k")).toEqual({ i: 19 });
    expect(await reopened.get("other")).toEqual([1, "two", null]);
  });
});
