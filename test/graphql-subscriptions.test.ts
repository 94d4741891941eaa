import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphqlData, graphqlWsClient, LiveSubscription } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

interface FeedMessage {
  readonly id: string;
  readonly conversationId: string;
  readonly seq: string;
  readonly text: string;
}

interface FeedEvent {
  readonly messages: {
    readonly kind: "READY" | "MESSAGE" | "CAUGHT_UP";
    readonly heads: { conversationId: string; seq: string }[] | null;
    readonly message: FeedMessage | null;
  };
}

const FEED = `subscription Feed($resume: [ConversationCursorInput!]) {
  messages(resume: $resume) { kind heads { conversationId seq } message { id: messageId conversationId seq text } }
}`;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** What a client keeps: the last seq received per conversation. */
class Cursors {
  readonly last = new Map<string, bigint>();
  take(conversationId: string, seq: string | bigint): void {
    const value = BigInt(seq);
    const known = this.last.get(conversationId);
    if (known === undefined || value > known) this.last.set(conversationId, value);
  }
  toResume() {
    return [...this.last].map(([conversationId, seq]) => ({ conversationId, seq: seq.toString() }));
  }
}

describe("GraphQL subscriptions over graphql-ws", () => {
  let server: ServerProcess;
  const clients: Client[] = [];
  const wsClient = (token?: string) => {
    const client = graphqlWsClient(server.url, token);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("2. a subscriber that disconnects while messages are sent resumes from its cursors: exactly the missed messages, then live ones", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const { group } = await alice.groups.createGroup({ name: "resume", memberUserIds: [bob.userId] });
    const groupId = group!.groupId;
    const cursors = new Cursors();

    // First connection: READY gives the heads (the group's creation event is seq 1), then live messages.
    const first = new LiveSubscription<FeedEvent>(wsClient(bob.session.accessToken), FEED);
    const ready = await first.next();
    expect(ready.messages.kind).toBe("READY");
    expect(ready.messages.heads).toEqual([{ conversationId: groupId, seq: "1" }]);
    for (const head of ready.messages.heads!) cursors.take(head.conversationId, head.seq);

    for (const i of range(2, 4)) await alice.send({ conversationId: groupId }, `live ${i}`);
    for (const i of range(2, 4)) {
      const event = await first.next();
      expect(event.messages).toMatchObject({ kind: "MESSAGE", message: { conversationId: groupId, seq: String(i), text: `live ${i}` } });
      cursors.take(event.messages.message!.conversationId, event.messages.message!.seq);
    }

    // Bob's connection goes away. Meanwhile the group moves on and Alice opens a direct conversation
    // with him, which his cursors know nothing about.
    await clients.pop()!.dispose();
    for (const i of range(5, 8)) await alice.send({ conversationId: groupId }, `missed ${i}`);
    const direct = await alice.send({ recipientUserId: bob.userId }, "missed dm 1");
    await alice.send({ recipientUserId: bob.userId }, "missed dm 2");
    const directId = direct.message!.conversationId;

    // Resubscribe with the cursors, while Alice keeps sending: the catch-up meets live traffic with
    // no gap and no duplicate.
    const second = new LiveSubscription<FeedEvent>(wsClient(bob.session.accessToken), FEED, { resume: cursors.toResume() });
    const concurrent = (async () => {
      for (const i of range(9, 28)) await alice.send({ conversationId: groupId }, `during ${i}`);
    })();
    const resumed = await second.next();
    expect(resumed.messages.kind).toBe("READY");

    const received: FeedMessage[] = [];
    let caughtUpAt = -1;
    while (received.filter((message) => message.conversationId === groupId).length < 24) {
      const event = await second.next();
      if (event.messages.kind === "CAUGHT_UP") caughtUpAt = received.length;
      else received.push(event.messages.message!);
    }
    await concurrent;

    const groupSeqs = received.filter((message) => message.conversationId === groupId).map((message) => Number(message.seq));
    const directSeqs = received.filter((message) => message.conversationId === directId).map((message) => Number(message.seq));
    expect(groupSeqs).toEqual(range(5, 28));
    expect(directSeqs).toEqual([1, 2]);
    expect(received.map((message) => message.id)).toHaveLength(new Set(received.map((message) => message.id)).size);
    // Everything missed came before CAUGHT_UP: seqs 5-8 of the group (and whatever of the concurrent
    // sends was already stored when the session read the store) and the whole direct conversation.
    const catchUp = received.slice(0, caughtUpAt);
    expect(caughtUpAt).toBeGreaterThanOrEqual(6);
    expect(catchUp.filter((m) => m.conversationId === groupId).map((m) => m.text).slice(0, 4)).toEqual(["missed 5", "missed 6", "missed 7", "missed 8"]);
    expect(catchUp.filter((m) => m.conversationId === directId).map((m) => m.text)).toEqual(["missed dm 1", "missed dm 2"]);

    // Then live ones, and nothing else.
    await alice.send({ conversationId: groupId }, "after 29");
    const live = await second.next();
    expect(live.messages.message).toMatchObject({ conversationId: groupId, seq: "29", text: "after 29" });
    expect(await second.quietFor(300)).toBe(true);

    // The history through Connect holds exactly what the feed delivered.
    const history = await bob.allMessages(groupId);
    expect(history.slice(4).map((message) => message.messageId)).toEqual([...received.filter((m) => m.conversationId === groupId).map((m) => m.id), live.messages.message!.id]);
    second.close();
  });

  it("receipts, typing and presence subscriptions carry the device stream's events", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const sent = await alice.send({ recipientUserId: bob.userId }, "read me");
    const conversationId = sent.message!.conversationId;
    const aliceWs = wsClient(alice.session.accessToken);

    const receipts = new LiveSubscription<{ receipts: { conversationId: string; userId: string; kind: string; seq: string } }>(
      aliceWs,
      `subscription($c: ID) { receipts(conversationId: $c) { conversationId userId kind seq } }`,
      { c: conversationId },
    );
    const typing = new LiveSubscription<{ typing: { userId: string; typing: boolean; expiresAt: string } }>(
      aliceWs,
      `subscription($c: ID!) { typing(conversationId: $c) { userId typing expiresAt } }`,
      { c: conversationId },
    );
    const presence = new LiveSubscription<{ presence: { userId: string; status: string } }>(
      aliceWs,
      `subscription($u: [ID!]!) { presence(userIds: $u) { userId status } }`,
      { u: [bob.userId] },
    );
    // The watch starts with the current state: Bob has no device connected.
    expect((await presence.next()).presence).toEqual({ userId: bob.userId, status: "OFFLINE" });
    // Let the other two sessions reach the bus before Bob acts.
    await new Promise((resolve) => setTimeout(resolve, 200));

    await graphqlData(server.url, `mutation($c: ID!) { markRead(input: { conversationId: $c, seq: "1" }) { readSeq } }`, { c: conversationId }, bob.session.accessToken);
    expect((await receipts.next()).receipts).toEqual({ conversationId, userId: bob.userId, kind: "READ", seq: "1" });

    await graphqlData(server.url, `mutation($c: ID!) { setTyping(input: { conversationId: $c }) { conversationId } }`, { c: conversationId }, bob.session.accessToken);
    const typed = (await typing.next()).typing;
    expect(typed).toMatchObject({ userId: bob.userId, typing: true });
    expect(Date.parse(typed.expiresAt)).toBeGreaterThan(Date.now());

    // Bob subscribing to anything makes him online (a subscription is a connected device).
    const bobFeed = new LiveSubscription<FeedEvent>(wsClient(bob.session.accessToken), FEED);
    await bobFeed.next();
    expect((await presence.next()).presence).toEqual({ userId: bob.userId, status: "ONLINE" });
    for (const subscription of [receipts, typing, presence, bobFeed]) subscription.close();
  });

  it("ends the message feed with GOING_AWAY (and other subscriptions with SERVER_DRAINING) when the gateway drains, and closes the WebSocket", async () => {
    const own = await startServer();
    try {
      const carol = await newUser(own.url, "carol");
      // Not lazy: the connection stays open after its subscriptions end, so the server's close is seen.
      const client = graphqlWsClient(own.url, carol.session.accessToken, { lazy: false });
      const closed = new Promise<number>((resolve) => client.on("closed", (event) => resolve((event as { code: number }).code)));
      const feed = new LiveSubscription<{ messages: { kind: string; reconnectAfterMs: number | null } }>(client, `subscription { messages { kind reconnectAfterMs } }`);
      const presence = new LiveSubscription<{ presence: { status: string } }>(client, `subscription($u: [ID!]!) { presence(userIds: $u) { status } }`, { u: [carol.userId] });
      expect((await feed.next()).messages).toEqual({ kind: "READY", reconnectAfterMs: null });
      // Its first event (the current state) says the second subscription has started too.
      await presence.next();
      const exited = own.kill("SIGTERM");
      expect((await feed.next()).messages).toEqual({ kind: "GOING_AWAY", reconnectAfterMs: 0 });
      expect((await feed.nextEvent()).kind).toBe("complete");
      const last = await presence.nextEvent();
      expect(last.kind === "next" && last.result.errors?.[0]?.extensions).toMatchObject({
        code: "SERVER_DRAINING",
        grpcCode: "unavailable",
        metadata: { reconnectAfterMs: "0" },
      });
      expect(await closed).toBe(1001);
      expect(await exited).toBe(0);
      await client.dispose();
    } finally {
      await own.kill("SIGKILL");
      removeDir(own.dataDir);
    }
  });

  it("ends a device's subscriptions with DEVICE_REVOKED when it logs out, and its token stops working", async () => {
    const frank = await newUser(server.url, "frank");
    const token = frank.session.accessToken;
    const feed = new LiveSubscription<FeedEvent>(wsClient(token), FEED);
    expect((await feed.next()).messages.kind).toBe("READY");
    expect(await graphqlData(server.url, `mutation { logOut { deviceId userErrors { code } } }`, {}, token)).toEqual({ logOut: { deviceId: expect.stringMatching(/^dev_/), userErrors: [] } });
    const ended = await feed.nextEvent();
    expect(ended.kind === "next" && ended.result.errors?.[0]?.extensions).toMatchObject({ code: "DEVICE_REVOKED", grpcCode: "unauthenticated" });
    expect((await feed.nextEvent()).kind).toBe("complete");
    await expect(graphqlData(server.url, `{ me { deviceId } }`, {}, token)).rejects.toThrow(/DEVICE_REVOKED/);
  });

  it("sends over WebSocket too: a mutation with a repeated clientMsgId stores one message", async () => {
    const dave = await newUser(server.url, "dave");
    const erin = await newUser(server.url, "erin");
    const client = wsClient(dave.session.accessToken);
    const clientMsgId = randomUUID();
    const send = () =>
      new Promise<{ sendMessage: { duplicate: boolean; message: { seq: string } } }>((resolve, reject) => {
        let data: unknown;
        client.subscribe(
          {
            query: `mutation($to: ID!, $id: String!) { sendMessage(input: { recipientUserId: $to, clientMsgId: $id, text: "once" }) { duplicate message { seq } } }`,
            variables: { to: erin.userId, id: clientMsgId },
          },
          { next: (result) => (data = result.data), error: reject, complete: () => resolve(data as never) },
        );
      });
    expect((await send()).sendMessage).toEqual({ duplicate: false, message: { seq: "1" } });
    expect((await send()).sendMessage).toEqual({ duplicate: true, message: { seq: "1" } });
    const conversation = await dave.openDirect(erin.userId);
    expect(conversation.lastSeq).toBe(1n);
  });

  it("upgrades to WebSocket on the TLS listener too (wss://, HTTP/1.1 by ALPN)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chat-graphql-tls-"));
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]);
    expect(made.status, made.stderr.toString()).toBe(0);
    const tls = await startServer({ dataDir: dir, env: { CHAT_TLS_CERT: cert, CHAT_TLS_KEY: key } });
    const ca = readFileSync(cert);
    class TrustingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    }
    try {
      // Signing up is anonymous, so over HTTPS (a socket needs a token from its connection_init on).
      const signUp = await new Promise<{ signUp: { session: { accessToken: string } } }>((resolve, reject) => {
        const query = `mutation { signUp(input: { username: "tls_${randomUUID().slice(0, 8)}", password: "correct horse battery" }) { session { accessToken } } }`;
        const request = httpsRequest(`https://127.0.0.1:${tls.port}/graphql`, { method: "POST", ca, headers: { "content-type": "application/json" } }, (response) => {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString()));
          response.on("end", () => resolve((JSON.parse(text) as { data: { signUp: { session: { accessToken: string } } } }).data));
        });
        request.on("error", reject);
        request.end(JSON.stringify({ query }));
      });
      const authed = createClient({
        url: `wss://127.0.0.1:${tls.port}/graphql`,
        webSocketImpl: TrustingWebSocket,
        connectionParams: { authorization: `Bearer ${signUp.signUp.session.accessToken}` },
        retryAttempts: 0,
      });
      const feed = new LiveSubscription<FeedEvent>(authed, FEED);
      expect((await feed.next()).messages).toEqual({ kind: "READY", heads: [], message: null });
      feed.close();
      await authed.dispose();
    } finally {
      await tls.kill("SIGTERM");
      removeDir(dir);
    }
  });
});
