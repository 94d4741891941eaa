import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryBus } from "../../backends/bus-memory/index.js";
import { createMemoryPresence } from "../../backends/presence-memory/index.js";
import { createSqliteStore } from "../../backends/store-sqlite/index.js";
import { StreamRequestSchema, type StreamRequest } from "../../gen/chat/v1/messaging_pb.js";
import { AsyncQueue } from "../../lib/async-queue.js";
import { takeUntil } from "../../test/support/wait.js";
import { createGroupsService } from "../groups/index.js";
import { createSyncService } from "../sync/index.js";
import { runDeviceSession, type ServerFrame } from "./device-session.js";
import { createMessagingService } from "./messaging-service.js";
import { createTypingNotifier } from "./typing.js";

const alice = { userId: "u_alice", deviceId: "dev_alice" };
const carol = { userId: "u_carol", deviceId: "dev_carol" };
const bob = { userId: "u_bob", deviceId: "dev_bob" };

async function world() {
  const store = createSqliteStore({ path: ":memory:" });
  for (const { userId } of [alice, bob, carol]) {
    await store.accounts.createUser({ userId, username: userId.slice(2), displayName: userId, passwordHash: "scrypt$1$8$1$c2FsdA$a2V5", createdAt: new Date() });
  }
  const bus = createMemoryBus();
  const presence = createMemoryPresence({ timeoutMs: 60_000 });
  const { accounts, conversations, messages, receipts } = store;
  const messaging = createMessagingService({ accounts, conversations, messages, bus });
  const groups = createGroupsService({ accounts, conversations, bus, maxMembers: 10 });
  const session = {
    messaging,
    sync: createSyncService({ conversations, messages, receipts, messaging, bus }),
    typing: createTypingNotifier({ conversations, bus, throttleMs: 0, ttlMs: 5_000 }),
    presence,
    bus,
    helloTimeoutMs: 5_000,
    heartbeatIntervalMs: 60_000,
    outboundLimit: 1_000,
    catchUpPageSize: 2,
    maxResumeCursors: 100,
  };
  const streams: AbortController[] = [];
  return {
    messaging,
    groups,
    /** Opens Bob's stream; `resume` asks for the catch-up of everything he may see. */
    async connectBob(resume: boolean) {
      const requests = new AsyncQueue<StreamRequest>();
      requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test", resume: resume ? { cursors: [] } : undefined } } }));
      const abort = new AbortController();
      streams.push(abort);
      const frames = runDeviceSession(session, bob, requests, abort.signal);
      expect((await frames.next()).value?.frame?.case).toBe("ready");
      return frames;
    },
    async close() {
      for (const abort of streams) abort.abort();
      await bus.close();
      await presence.close?.();
      await store.close();
    },
  };
}

type World = Awaited<ReturnType<typeof world>>;

/** A group of Alice and Carol with three messages in it (seqs 2-4 after the creation event), then Bob added. */
async function groupWithHistoryThenBob(w: World) {
  const group = await w.groups.createGroup(alice, { name: "before bob", memberUserIds: [carol.userId] });
  const groupId = group.groupId!;
  for (const text of ["secret one", "secret two", "secret three"]) {
    await w.messaging.send(alice, { clientMsgId: `client-${text.replace(" ", "-")}`, to: { case: "conversationId", value: groupId }, text });
  }
  const added = await w.groups.addMembers(alice, groupId, [bob.userId]);
  const joinedSeq = added.members!.find((member) => member.userId === bob.userId)!.joinedSeq!;
  return { groupId, joinedSeq };
}

const messageOf = (frame: ServerFrame) => (frame.frame?.case === "message" ? frame.frame.value : undefined);
const showFrame = (frame: ServerFrame) => {
  const message = messageOf(frame);
  return message ? `message seq ${message.seq} "${message.text}"` : String(frame.frame?.case);
};

describe("a member added to a group", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it("catches up from their joining on, never the messages from before it", async () => {
    w = await world();
    const { groupId, joinedSeq } = await groupWithHistoryThenBob(w);
    expect(joinedSeq).toBe(5n);
    await w.messaging.send(alice, { clientMsgId: "client-welcome", to: { case: "conversationId", value: groupId }, text: "welcome bob" });

    const frames = await w.connectBob(true);
    const caughtUp = await takeUntil(frames, (frame) => frame.frame?.case === "caughtUp", { what: "Bob's catch-up to end", show: showFrame });
    const seen = caughtUp.map(messageOf).filter((message) => message !== undefined);
    expect(seen.map((message) => [message.seq, message.text])).toEqual([
      [5n, "added 1 member(s)"],
      [6n, "welcome bob"],
    ]);
  });

  it("online while added, receives the group's new messages and none from before", async () => {
    w = await world();
    const frames = await w.connectBob(false);
    const { groupId } = await groupWithHistoryThenBob(w);
    await w.messaging.send(alice, { clientMsgId: "client-welcome", to: { case: "conversationId", value: groupId }, text: "welcome bob" });

    // Ends on the message after the joining: whatever leaked from before it would have come first.
    const live = await takeUntil(frames, (frame) => messageOf(frame)?.text === "welcome bob", { what: `"welcome bob" on Bob's stream`, show: showFrame });
    const seen = live.map(messageOf).filter((message) => message !== undefined);
    expect(seen.map((message) => message.seq)).toEqual([5n, 6n]);
  });

  it("reads history from their joining on", async () => {
    w = await world();
    const { groupId } = await groupWithHistoryThenBob(w);
    const history = await w.messaging.getHistory(bob, { conversationId: groupId, limit: 50 });
    expect(history.messages.map((message) => message.seq)).toEqual([5n]);
    const forward = await w.messaging.getHistory(bob, { conversationId: groupId, afterSeq: 0n, limit: 50 });
    expect(forward.messages.map((message) => message.seq)).toEqual([5n]);
  });
});

describe("a member removed from a group", () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it("reads history, and catches up, only up to the event that removed them", async () => {
    w = await world();
    const { groupId } = await groupWithHistoryThenBob(w);
    await w.messaging.send(alice, { clientMsgId: "client-while-in", to: { case: "conversationId", value: groupId }, text: "while bob is in" });
    await w.groups.removeMember(alice, groupId, bob.userId);
    await w.messaging.send(alice, { clientMsgId: "client-after-out", to: { case: "conversationId", value: groupId }, text: "after bob left" });

    const history = await w.messaging.getHistory(bob, { conversationId: groupId, limit: 50 });
    expect(history.messages.map((message) => [message.seq, message.text])).toEqual([
      [5n, "added 1 member(s)"],
      [6n, "while bob is in"],
      [7n, "removed a member"],
    ]);
    const frames = await w.connectBob(true);
    const caughtUp = await takeUntil(frames, (frame) => frame.frame?.case === "caughtUp", { what: "Bob's catch-up to end", show: showFrame });
    expect(caughtUp.map(messageOf).filter((message) => message !== undefined).map((message) => message.seq)).toEqual([5n, 6n, 7n]);
  });
});

