import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryBus } from "../../backends/bus-memory/index.js";
import { createMemoryPresence } from "../../backends/presence-memory/index.js";
import { createSqliteStore } from "../../backends/store-sqlite/index.js";
import { StreamRequestSchema, type StreamRequest } from "../../gen/chat/v1/messaging_pb.js";
import { AsyncQueue } from "../../lib/async-queue.js";
import { takeUntil } from "../../test/support/wait.js";
import type { BusEvent, EventBus, MessageStore } from "../ports/index.js";
import { createSyncService } from "../sync/index.js";
import { runDeviceSession, type ServerFrame } from "./device-session.js";
import { createMessagingService } from "./messaging-service.js";
import { createTypingNotifier } from "./typing.js";

const alice = { userId: "u_alice", deviceId: "dev_alice" };
const bob = { userId: "u_bob", deviceId: "dev_bob" };
const CONVERSATION = "d_alice_bob";

/**
 * A store that shows one seq only some reads after it was written, and a bus that hands its event
 * over only after the next one: how another gateway's append can look from here (seen out of order,
 * and not yet readable when the later one is).
 */
function laggingWorld() {
  const store = createSqliteStore({ path: ":memory:" });
  let hiddenSeq: bigint | undefined;
  let readsLeftHidden = 0;
  let holdAppend: MessageStore["append"] | undefined;
  const messages: MessageStore = {
    append: (message) => (holdAppend ?? store.messages.append)(message),
    async readRange(conversationId, options) {
      const page = await store.messages.readRange(conversationId, options);
      if (hiddenSeq === undefined || readsLeftHidden === 0) return page;
      readsLeftHidden--;
      return page.filter((message) => message.seq !== hiddenSeq);
    },
  };
  const inner = createMemoryBus();
  let heldSeq: bigint | undefined;
  let held: { userIds: readonly string[]; event: BusEvent } | undefined;
  const bus: EventBus = {
    async publish(userIds, event) {
      if (event.kind === "message" && event.message.seq === heldSeq) {
        held = { userIds, event };
        return;
      }
      await inner.publish(userIds, event);
      if (held && event.kind === "message") {
        const late = held;
        held = undefined;
        await inner.publish(late.userIds, late.event);
      }
    },
    subscribe: (userId, options) => inner.subscribe(userId, options),
    close: () => inner.close(),
  };
  const messaging = createMessagingService({ accounts: store.accounts, conversations: store.conversations, messages, bus });
  const presence = createMemoryPresence({ timeoutMs: 60_000 });
  const session = {
    messaging,
    sync: createSyncService({ conversations: store.conversations, messages, receipts: store.receipts, messaging, bus }),
    typing: createTypingNotifier({ conversations: store.conversations, bus, throttleMs: 0, ttlMs: 5_000 }),
    presence,
    bus,
    helloTimeoutMs: 5_000,
    heartbeatIntervalMs: 60_000,
    outboundLimit: 1_000,
    catchUpPageSize: 100,
    maxResumeCursors: 100,
  };
  return {
    store,
    messaging,
    session,
    set holdAppend(hold: MessageStore["append"]) {
      holdAppend = hold;
    },
    /** The message with this seq is published after the next one, and stays unreadable for `reads` reads. */
    lag(seq: bigint, reads: number) {
      hiddenSeq = seq;
      heldSeq = seq;
      readsLeftHidden = reads;
    },
    async close() {
      await bus.close();
      await presence.close?.();
      await store.close();
    },
  };
}

async function messagesOf(frames: AsyncGenerator<ServerFrame>, count: number): Promise<bigint[]> {
  const seqs: bigint[] = [];
  const deadline = Date.now() + 5_000;
  while (seqs.length < count) {
    const next = await Promise.race([frames.next(), new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), deadline - Date.now()))]);
    if (next === "timeout") throw new Error(`only ${seqs.length} of ${count} messages within 5 s: ${seqs.join(", ")}`);
    if (next.done) throw new Error(`the session ended after ${seqs.join(", ")}`);
    const frame = next.value.frame;
    if (frame?.case === "message") seqs.push(frame.value.seq ?? 0n);
  }
  return seqs;
}

describe("device session", () => {
  let world: ReturnType<typeof laggingWorld> | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it("delivers a message the store showed late and the bus handed over after its successor: in order, none lost", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const requests = new AsyncQueue<StreamRequest>();
    requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test" } } }));
    const abort = new AbortController();
    const frames = runDeviceSession(world.session, bob, requests, abort.signal);
    expect((await frames.next()).value?.frame?.case).toBe("ready");

    const send = (text: string) =>
      world!.messaging.send(alice, { clientMsgId: `client-${text}-0001`, to: { case: "conversationId", value: CONVERSATION }, text });
    await send("one");
    // Seq 2 is stored but unreadable for the next two reads, and its event comes after seq 3's.
    world.lag(2n, 2);
    await send("two");
    await send("three");
    await send("four");

    expect(await messagesOf(frames, 4)).toEqual([1n, 2n, 3n, 4n]);
    abort.abort();
    await frames.return(undefined);
  });

  it("resumes past a seq its catch-up page lacks only once it can read it: in order, none lost", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    for (const text of ["one", "two", "three"]) {
      await world.messaging.send(alice, { clientMsgId: `client-${text}-0001`, to: { case: "conversationId", value: CONVERSATION }, text });
    }
    // The first catch-up read shows seq 3 but not seq 2.
    world.lag(2n, 1);
    const requests = new AsyncQueue<StreamRequest>();
    requests.push(
      create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test", resume: { cursors: [{ conversationId: CONVERSATION, seq: 1n }] } } } }),
    );
    const abort = new AbortController();
    const frames = runDeviceSession(world.session, bob, requests, abort.signal);
    expect((await frames.next()).value?.frame?.case).toBe("ready");
    expect(await messagesOf(frames, 2)).toEqual([2n, 3n]);
    abort.abort();
    await frames.return(undefined);
  });

  it("resumes after the device's cursor: what it has is not sent again", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    for (const text of ["one", "two", "three", "four"]) {
      await world.messaging.send(alice, { clientMsgId: `client-${text}-0001`, to: { case: "conversationId", value: CONVERSATION }, text });
    }
    const requests = new AsyncQueue<StreamRequest>();
    requests.push(
      create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test", resume: { cursors: [{ conversationId: CONVERSATION, seq: 2n }] } } } }),
    );
    const abort = new AbortController();
    const frames = runDeviceSession(world.session, bob, requests, abort.signal);
    const caughtUp = await takeUntil(frames, (frame) => frame.frame?.case === "caughtUp", { what: "the end of Bob's catch-up", show: (frame) => String(frame.frame?.case) });
    const seqs = caughtUp.flatMap((frame) => (frame.frame?.case === "message" ? [frame.frame.value.seq] : []));
    expect(seqs).toEqual([3n, 4n]);
    abort.abort();
    await frames.return(undefined);
  });

  it("delivers each live message once, also when the next one takes the slow path", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const requests = new AsyncQueue<StreamRequest>();
    requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test" } } }));
    const abort = new AbortController();
    const frames = runDeviceSession(world.session, bob, requests, abort.signal);
    expect((await frames.next()).value?.frame?.case).toBe("ready");
    for (const text of ["one", "two", "three", "four"]) {
      await world.messaging.send(alice, { clientMsgId: `client-${text}-0001`, to: { case: "conversationId", value: CONVERSATION }, text });
    }
    // The fourth is the marker: a repeat of an earlier one would have come before it.
    expect(await messagesOf(frames, 4)).toEqual([1n, 2n, 3n, 4n]);
    abort.abort();
    await frames.return(undefined);
  });

  it("delivers the first message of a conversation that began after the stream opened", async () => {
    world = laggingWorld();
    const requests = new AsyncQueue<StreamRequest>();
    requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test" } } }));
    const abort = new AbortController();
    const frames = runDeviceSession(world.session, bob, requests, abort.signal);
    expect((await frames.next()).value?.frame?.case).toBe("ready");
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    await world.messaging.send(alice, { clientMsgId: "client-first-0001", to: { case: "conversationId", value: CONVERSATION }, text: "first" });
    // On its own, before anything else is sent that would make the stream read the store.
    expect(await messagesOf(frames, 1)).toEqual([1n]);
    abort.abort();
    await frames.return(undefined);
  });

  // The transport encodes a frame it has seen before once (gateway/native-stream.ts, envelopeOf):
  // that only holds if every device gets the same frame object for one message.
  it("hands every device of a recipient the same frame object for one message", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const open = (deviceId: string) => {
      const requests = new AsyncQueue<StreamRequest>();
      requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test" } } }));
      const abort = new AbortController();
      return { frames: runDeviceSession(world!.session, { userId: bob.userId, deviceId }, requests, abort.signal), abort };
    };
    const phone = open("dev_bob_phone");
    const laptop = open("dev_bob_laptop");
    for (const device of [phone, laptop]) expect((await device.frames.next()).value?.frame?.case).toBe("ready");

    await world.messaging.send(alice, { clientMsgId: "client-shared-0001", to: { case: "conversationId", value: CONVERSATION }, text: "to both" });
    const [onPhone, onLaptop] = await Promise.all([phone.frames.next(), laptop.frames.next()]);
    expect(onPhone.value?.frame?.case).toBe("message");
    expect(onLaptop.value).toBe(onPhone.value);
    for (const device of [phone, laptop]) {
      device.abort.abort();
      await device.frames.return(undefined);
    }
  });

  it("handles a stream's pipelined sends to one conversation together: they reach the store at once and are acked in order", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const held = holdAppends(world, 5);
    const { requests, frames, abort } = openStream(world, alice);
    expect((await frames.next()).value?.frame?.case).toBe("ready");
    const ids = Array.from({ length: 5 }, (_, i) => `pipelined-${i}-0001`);
    for (const id of ids) requests.push(sendFrame(id));

    const acks = await acksOf(frames, 5);
    expect(held.mostAtOnce()).toBe(5);
    expect(acks.map((ack) => ack.clientMsgId)).toEqual(ids);
    expect(acks.map((ack) => ack.seq)).toEqual([1n, 2n, 3n, 4n, 5n]);
    abort.abort();
    await frames.return(undefined);
  });

  it("answers the sends it has read before it tells a draining device go_away", async () => {
    world = laggingWorld();
    await world.store.conversations.ensureDirectConversation(CONVERSATION, [alice.userId, bob.userId], new Date());
    const held = holdAppends(world, 3);
    const shutdown = new AbortController();
    const { requests, frames, abort } = openStream(world, alice, shutdown.signal);
    expect((await frames.next()).value?.frame?.case).toBe("ready");
    for (let i = 0; i < 3; i++) requests.push(sendFrame(`draining-${i}-0001`));
    const cases: string[] = [];
    const read = (async () => {
      for await (const frame of frames) cases.push(frame.frame?.case ?? "");
    })();
    // The drain begins while all three sends wait in the store, unanswered.
    await held.reached;
    shutdown.abort();
    await read;
    // Her own messages come back to her device too; what matters is that the acks precede go_away.
    expect(cases.filter((c) => c !== "message")).toEqual(["ack", "ack", "ack", "goAway"]);
    abort.abort();
  });
});

function openStream(world: ReturnType<typeof laggingWorld>, principal: { userId: string; deviceId: string }, shutdown?: AbortSignal) {
  const requests = new AsyncQueue<StreamRequest>();
  requests.push(create(StreamRequestSchema, { frame: { case: "hello", value: { clientVersion: "test" } } }));
  const abort = new AbortController();
  const frames = runDeviceSession({ ...world.session, ...(shutdown ? { shutdown } : {}) }, principal, requests, abort.signal);
  return { requests, frames, abort };
}

function sendFrame(clientMsgId: string): StreamRequest {
  return create(StreamRequestSchema, { frame: { case: "send", value: { clientMsgId, to: { case: "conversationId", value: CONVERSATION }, text: clientMsgId } } });
}

/**
 * Holds every append until `count` of them are waiting at once (at most 5 s, after which the test's
 * own assertion on mostAtOnce fails), then lets them all go, one macrotask later.
 */
function holdAppends(world: ReturnType<typeof laggingWorld>, count: number) {
  let waiting = 0;
  let most = 0;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (release = resolve));
  const timeout = setTimeout(release, 5_000);
  const store = world.store.messages;
  const original = store.append.bind(store);
  world.holdAppend = async (message) => {
    waiting++;
    most = Math.max(most, waiting);
    if (waiting >= count) {
      clearTimeout(timeout);
      release();
    }
    await reached;
    await new Promise((resolve) => setImmediate(resolve));
    waiting--;
    return original(message);
  };
  return { reached, mostAtOnce: () => most };
}

async function acksOf(frames: AsyncGenerator<ServerFrame>, count: number) {
  const acks: Array<{ clientMsgId: string; seq: bigint }> = [];
  while (acks.length < count) {
    const next = await frames.next();
    if (next.done) throw new Error(`the session ended after ${acks.length} acks`);
    const frame = next.value.frame;
    if (frame?.case === "rejected") throw new Error(`a send was rejected: ${frame.value.status?.message}`);
    if (frame?.case === "ack") acks.push({ clientMsgId: frame.value.message?.clientMsgId ?? "", seq: frame.value.message?.seq ?? 0n });
  }
  return acks;
}
