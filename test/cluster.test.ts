import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient, type DeviceStream } from "../clients/sdk/index.js";
import { PresenceStatus } from "../gen/chat/v1/messaging_pb.js";
import type { Message } from "../gen/chat/v1/types_pb.js";
import { startCluster, type Cluster } from "./support/cluster.js";
import { newUser } from "./support/users.js";
import { waitFor } from "./support/wait.js";

const seqs = (messages: readonly Message[]) => messages.map((message) => Number(message.seq));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The same device (same tokens) talking to another gateway, as after a reconnect through a load balancer. */
function sameDeviceOn(client: ChatClient, baseUrl: string): ChatClient {
  const moved = new ChatClient({ baseUrl });
  Object.assign(moved, { currentSession: client.session });
  return moved;
}

/** Collects every message a device receives, across reconnects, checking the order as it goes. */
function collect(stream: DeviceStream, into: Message[]): Promise<void> {
  return (async () => {
    for await (const event of stream) if (event.kind === "message") into.push(event.message);
  })().catch(() => undefined);
}

/**
 * A device as a real client runs it: when its stream ends (the bus ends streams whose live events it
 * could not deliver, so they resume from the store), it reopens from its cursors.
 */
function followDevice(client: ChatClient, into: Message[]) {
  let current = client.openStream();
  let stopped = false;
  const done = (async () => {
    for (;;) {
      await collect(current, into);
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
      current = client.openStream({ resumeFrom: current.cursors });
    }
  })();
  return {
    get stream() {
      return current;
    },
    async stop() {
      stopped = true;
      current.close();
      await done;
    },
  };
}

describe("cluster: three gateways on Cassandra, NATS JetStream and Redis", () => {
  let cluster: Cluster;
  const url = (index: number) => cluster.gateways[index]!.url;

  beforeAll(async () => {
    cluster = await startCluster(3, { CHAT_PRESENCE_TIMEOUT_MS: "1500", CHAT_RECONCILE_INTERVAL_MS: "500" });
  }, 180_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it("1. delivers 1:1 and group traffic across gateways in the same order for everyone", async () => {
    const [alice, bob, carol] = await Promise.all([newUser(url(0), "alice"), newUser(url(1), "bob"), newUser(url(2), "carol")]);
    const streams = [alice.openStream(), bob.openStream(), carol.openStream()];
    await Promise.all(streams.map((stream) => stream.ready));

    const direct = await alice.send({ recipientUserId: bob.userId }, "across gateways");
    const [atBob] = await streams[1]!.takeMessages(1);
    expect(atBob!.messageId).toBe(direct.message!.messageId);

    const { group } = await carol.groups.createGroup({ name: "spread", memberUserIds: [alice.userId, bob.userId] });
    const to = { conversationId: group!.groupId };
    await Promise.all(streams.map((stream, index) => Promise.all(range(1, 20).map((i) => stream.send(to, `${index}:${i}`)))));
    const history = await alice.allMessages(group!.groupId);
    expect(seqs(history)).toEqual(range(1, 61));
    for (const [index, stream] of streams.entries()) {
      // Alice's stream also holds the echo of her direct message; Bob's was taken above.
      const got = await stream.takeMessages(61 + (index === 0 ? 1 : 0), 30_000);
      const groupOnly = got.filter((message) => message.conversationId === group!.groupId);
      expect(groupOnly.map((message) => message.messageId)).toEqual(history.map((message) => message.messageId));
    }
    streams.forEach((stream) => stream.close());
  }, 120_000);

  it("2. thirty concurrent senders on three gateways into one group: seqs contiguous from 1, no duplicates", async () => {
    const members = await Promise.all(range(0, 29).map((i) => newUser(url(i % 3), `s${i}`)));
    const { group } = await members[0]!.groups.createGroup({ name: "thirty", memberUserIds: members.slice(1).map((member) => member.userId) });
    const perSender = 5;
    const acks = await Promise.all(
      members.map((member, index) => Promise.all(range(1, perSender).map((i) => member.send({ conversationId: group!.groupId }, `${index}:${i}`)))),
    );
    const history = await members[0]!.allMessages(group!.groupId);
    expect(seqs(history)).toEqual(range(1, 1 + 30 * perSender));
    expect(new Set(history.map((message) => message.messageId)).size).toBe(history.length);
    expect(new Set(acks.flat().map((ack) => ack.message!.seq)).size).toBe(30 * perSender);
  }, 180_000);

  it("3a. a gateway killed with -9 mid-traffic: its users resume on another with nothing lost or duplicated", async () => {
    const sender = await newUser(url(0), "sender");
    const receiver = await newUser(url(2), "receiver");
    const conversationId = (await sender.openDirect(receiver.userId)).conversationId;
    const received: Message[] = [];
    const first = receiver.openStream();
    await first.ready;
    const firstDone = collect(first, received);
    const outbox = sender.openStream();
    await outbox.ready;

    let killed = false;
    const sending = (async () => {
      for (let i = 1; i <= 200; i++) {
        await outbox.send({ conversationId }, `m${i}`);
        if (i === 80) {
          killed = true;
          await cluster.gateways[2]!.kill("SIGKILL");
        }
      }
    })();
    await waitFor(() => killed, 60_000, "the kill");
    await firstDone;
    // The device reconnects through the load balancer to another gateway and resumes from its cursor.
    const again = sameDeviceOn(receiver, url(1)).openStream({ resumeFrom: first.cursors });
    const againDone = collect(again, received);
    await sending;
    await waitFor(() => received.length >= 200, 60_000, "all 200 messages");
    expect(seqs(received)).toEqual(range(1, 200));
    again.close();
    await againDone;
    outbox.close();
    await cluster.startGateway(2);
  }, 180_000);

  it("3b. nats-server restarted mid-traffic: nothing lost, nothing duplicated", async () => {
    const sender = await newUser(url(0), "sender");
    const receiver = await newUser(url(1), "receiver");
    const conversationId = (await sender.openDirect(receiver.userId)).conversationId;
    const received: Message[] = [];
    const stream = receiver.openStream();
    await stream.ready;
    const done = collect(stream, received);
    for (let i = 1; i <= 150; i++) {
      await sender.send({ conversationId }, `n${i}`);
      if (i === 50) await cluster.nats.restart();
    }
    // Live events lost while NATS was down are filled from the store when the next one arrives.
    await waitFor(() => received.length >= 150, 60_000, "all 150 messages");
    expect(seqs(received)).toEqual(range(1, 150));
    stream.close();
    await done;
  }, 180_000);

  it("3c. redis-server restarted: presence recovers and no message is lost", async () => {
    const watched = await newUser(url(1), "watched");
    const watcher = await newUser(url(0), "watcher");
    const received: Message[] = [];
    const device = followDevice(watched, received);
    const watcherStream = watcher.openStream();
    await Promise.all([device.stream.ready, watcherStream.ready]);
    const beat = setInterval(() => device.stream.heartbeat(), 200);
    try {
      watcherStream.watchPresence([watched.userId]);
      expect((await watcherStream.next("presence")).presence.status).toBe(PresenceStatus.ONLINE);

      await cluster.redis.restart();
      await waitFor(
        async () => (await watcher.presence.getPresence({ userIds: [watched.userId] })).presences[0]?.status === PresenceStatus.ONLINE,
        20_000,
        "presence to come back after the Redis restart",
      );
      // Until the gateways have re-registered their devices in the new Redis, a message may not be routed
      // live; the next one that is, or the device's resume, brings the earlier ones from the store.
      const sent: string[] = [];
      await waitFor(
        async () => {
          sent.push((await watcher.send({ recipientUserId: watched.userId }, `after the redis restart ${sent.length + 1}`)).message!.messageId);
          return received.length > 0;
        },
        30_000,
        "live delivery after the Redis restart",
      );
      await waitFor(() => received.length >= sent.length, 20_000, "every message sent after the restart");
      expect(received.map((message) => message.messageId)).toEqual(sent);
    } finally {
      clearInterval(beat);
      await device.stop();
      watcherStream.close();
    }
  }, 120_000);

  it("4. a message the bus routed nowhere reaches the open device at a heartbeat, without a reconnect", async () => {
    const sender = await newUser(url(0), "sender");
    const receiver = await newUser(url(1), "receiver");
    const conversationId = (await sender.openDirect(receiver.userId)).conversationId;
    const stream = receiver.openStream();
    await stream.ready;
    const received: Message[] = [];
    const done = collect(stream, received);
    // What a restarted Redis looks like until the gateways write their devices again: no route to the receiver.
    const redis = new Redis(cluster.redis.url);
    try {
      await redis.del(`chat:sessions:${receiver.userId}`);
    } finally {
      redis.disconnect();
    }
    const sent = await sender.send({ conversationId }, "routed nowhere");
    const beat = setInterval(() => stream.heartbeat(), 200);
    try {
      await waitFor(() => received.length > 0, 20_000, "the message at a heartbeat");
      expect(received.map((message) => message.messageId)).toEqual([sent.message!.messageId]);
    } finally {
      clearInterval(beat);
      stream.close();
      await done;
    }
  }, 60_000);
});
