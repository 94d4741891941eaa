import { connect, createServer, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { ChatClient, ChatSession, type ConnectionState } from "../clients/sdk/index.js";
import type { SendMessageResponse } from "../gen/chat/v1/messaging_pb.js";
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

/** Every send's ack, or a failure within the bound saying how many came and how many still wait. */
async function allAcked<T>(acks: readonly Promise<T>[], session: ChatSession, timeoutMs = 30_000): Promise<T[]> {
  let settled = 0;
  for (const ack of acks) void ack.then(() => settled++, () => settled++);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${settled} of ${acks.length} sends acknowledged after ${timeoutMs} ms; the session (${session.state}) still holds ${session.pendingCount}`)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.all(acks), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends one more message and waits for it: anything the reconnects duplicated was stored and
 * delivered before it, so what arrived up to it is everything that will.
 */
async function untilMarker(sender: ChatSession, to: { conversationId: string }, received: Message[]): Promise<Message[]> {
  await sender.send(to, "marker");
  await waitFor(
    () => `the marker after 100 messages (bob has ${received.length}, the last "${received.at(-1)?.text}")`,
    () => received.some((message) => message.text === "marker"),
  );
  expect(received.at(-1)?.text).toBe("marker");
  return received.slice(0, -1);
}

function connected(session: ChatSession): Promise<void> {
  return waitFor("the session to connect", () => session.state === "connected");
}

/** Everything the session hears in one conversation, in arrival order. */
function collect(session: ChatSession, conversationId: string): Message[] {
  const received: Message[] = [];
  session.on("message", (message) => {
    if (message.conversationId === conversationId) received.push(message);
  });
  return received;
}

function expectExactlyOnceInOrder(received: Message[], count: number): void {
  expect(received.map((message) => message.text)).toEqual(Array.from({ length: count }, (_, i) => `message ${i}`));
  const seqs = received.map((message) => message.seq);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);
}

/**
 * A TCP relay whose cut() makes every open connection go silent without closing it, as a vanished
 * network does: nothing reaches either side and no FIN or RST says so. New connections still work.
 */
async function silentCutRelay(targetPort: number): Promise<{ url: string; cut(): void; close(): void }> {
  const pairs = new Set<{ client: Socket; upstream: Socket; silent: boolean }>();
  const relay = createServer((client) => {
    const pair = { client, upstream: connect(targetPort, "127.0.0.1"), silent: false };
    pairs.add(pair);
    client.on("data", (chunk) => pair.silent || pair.upstream.write(chunk));
    pair.upstream.on("data", (chunk) => pair.silent || client.write(chunk));
    const end = () => {
      client.destroy();
      pair.upstream.destroy();
      pairs.delete(pair);
    };
    for (const socket of [client, pair.upstream]) socket.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const port = (relay.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => pairs.forEach((pair) => (pair.silent = true)),
    close: () => {
      relay.close();
      pairs.forEach((pair) => (pair.client.destroy(), pair.upstream.destroy()));
    },
  };
}

describe("SDK: reconnect while sending", () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.kill("SIGTERM")));
    dirs.forEach(removeDir);
  });

  it("delivers 100 messages exactly once and in order across a server kill -9 and restart", async () => {
    let server = await startServer();
    servers.push(server);
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const to = { conversationId: conversation.conversationId };

    const bobSession = await ChatSession.open(bob, { backoff: FAST_BACKOFF });
    const aliceSession = await ChatSession.open(alice, { backoff: FAST_BACKOFF });
    const received = collect(bobSession, conversation.conversationId);
    const aliceStates: ConnectionState[] = [];
    aliceSession.on("connection", (change) => aliceStates.push(change.state));
    await Promise.all([connected(bobSession), connected(aliceSession)]);

    const acks: Promise<SendMessageResponse>[] = [];
    let killed: Promise<number | null> | undefined;
    for (let i = 0; i < 100; i++) {
      acks.push(aliceSession.send(to, `message ${i}`));
      // Killed with most of the first 41 still in flight: some die unwritten, some written but unacknowledged.
      if (i === 40) {
        await waitFor("the first acks", () => aliceSession.pendingCount <= 35, 10_000);
        killed = server.kill("SIGKILL");
      }
      if (i === 70) {
        await killed;
        server = await startServer({ dataDir: server.dataDir, port: server.port });
        servers.push(server);
      }
      if (i > 40) await sleep(2);
    }
    const results = await allAcked(acks, aliceSession);
    expect(results).toHaveLength(100);
    expectExactlyOnceInOrder(await untilMarker(aliceSession, to, received), 100);
    expect(aliceStates).toContain("reconnecting");
    expect(aliceSession.pendingCount).toBe(0);
    // The store holds each message once, too.
    expect((await alice.allMessages(conversation.conversationId)).map((message) => message.text)).toEqual(received.map((message) => message.text));
    expect(received).toHaveLength(101);

    await Promise.all([aliceSession.close(), bobSession.close()]);
    expect(aliceSession.state).toBe("closed");
  });

  it("delivers 100 messages exactly once and in order when the connection drops mid-send", async () => {
    const server = await startServer();
    servers.push(server);
    dirs.push(server.dataDir);
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversation = await alice.openDirect(bob.userId);
    const to = { conversationId: conversation.conversationId };

    const bobSession = await ChatSession.open(bob, { backoff: FAST_BACKOFF });
    const aliceSession = await ChatSession.open(alice, { backoff: FAST_BACKOFF });
    const received = collect(bobSession, conversation.conversationId);
    await Promise.all([connected(bobSession), connected(aliceSession)]);

    let acked = 0;
    const acks: Promise<unknown>[] = [];
    // All 100 are in flight at once, so the drops cut some between the durable write and the ack.
    for (let i = 0; i < 100; i++) {
      acks.push(
        aliceSession.send(to, `message ${i}`).then((ack) => {
          acked++;
          if (acked === 10 || acked === 50) aliceSession.reconnect();
          if (acked === 30) bobSession.reconnect();
          return ack;
        }),
      );
    }
    await allAcked(acks, aliceSession);
    expectExactlyOnceInOrder(await untilMarker(aliceSession, to, received), 100);
    expect((await alice.allMessages(conversation.conversationId)).map((message) => message.text)).toEqual(received.map((message) => message.text));
    await Promise.all([aliceSession.close(), bobSession.close()]);
  });

  it("finds a silently dead connection by heartbeat and delivers 100 messages exactly once and in order", async () => {
    const server = await startServer({ env: { CHAT_HEARTBEAT_INTERVAL_MS: "200" } });
    servers.push(server);
    dirs.push(server.dataDir);
    const relay = await silentCutRelay(server.port);
    try {
      const alice = await newUser(server.url, "alice");
      const bob = await newUser(server.url, "bob");
      const conversation = await alice.openDirect(bob.userId);
      const to = { conversationId: conversation.conversationId };
      const aliceViaRelay = new ChatClient({ baseUrl: relay.url, pingIntervalMs: 200, pingTimeoutMs: 500 });
      aliceViaRelay.restore(alice.session);

      const bobSession = await ChatSession.open(bob, { backoff: FAST_BACKOFF });
      const aliceSession = await ChatSession.open(aliceViaRelay, { backoff: FAST_BACKOFF });
      const received = collect(bobSession, conversation.conversationId);
      await Promise.all([connected(bobSession), connected(aliceSession)]);

      const acks: Promise<SendMessageResponse>[] = [];
      for (let i = 0; i < 100; i++) {
        acks.push(aliceSession.send(to, `message ${i}`));
        if (i === 40) {
          await waitFor("the first acks", () => aliceSession.pendingCount <= 35, 10_000);
          relay.cut();
        }
        if (i > 40 && i < 60) await sleep(20);
      }
      await allAcked(acks, aliceSession);
      expectExactlyOnceInOrder(await untilMarker(aliceSession, to, received), 100);
      await Promise.all([aliceSession.close(), bobSession.close()]);
    } finally {
      relay.close();
    }
  });
});
