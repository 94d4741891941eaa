import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BusOverflowError, type BusEvent, type BusSubscription, type EventBus, type SessionRegistry } from "../../services/ports/index.js";

/**
 * How long a networked engine may take to carry an event from one gateway to another. Waits end as
 * soon as the events are there; the margin is for a 2-core CI machine that also runs Cassandra
 * restarts and browser tests, where the first cross-gateway event on a fresh nats-server once took
 * longer than 5 s. An event that is lost still fails the test, and the message says on which gateway.
 */
const DELIVERY_MS = 20_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Two or more gateways' buses sharing one backend. */
export interface BusCluster {
  /** At least two: index = gateway. An in-process engine may pass one bus twice. */
  readonly buses: readonly EventBus[];
  /** Each gateway's session registry, if the engine routes by one (same indexes as `buses`). */
  readonly registries?: readonly SessionRegistry[];
  /** Closes the buses and registries (close() of a bus the test already closed must be harmless) and what they ran on. */
  dispose(): Promise<void>;
}

interface Recorder {
  readonly events: BusEvent[];
  waitFor(count: number, withinMs?: number): Promise<BusEvent[]>;
  /** Resolves when the iteration ended, with what it threw, if anything. */
  readonly ended: Promise<unknown>;
  readonly isEnded: () => boolean;
}

function record(subscription: AsyncIterable<BusEvent>, label = "subscriber"): Recorder {
  const events: BusEvent[] = [];
  let wake: () => void = () => {};
  let changed = new Promise<void>((resolve) => (wake = resolve));
  let done = false;
  function signal(): void {
    const resolve = wake;
    changed = new Promise<void>((next) => (wake = next));
    resolve();
  }
  const ended = (async (): Promise<unknown> => {
    try {
      for await (const event of subscription) {
        events.push(event);
        signal();
      }
      return undefined;
    } catch (error) {
      return error;
    } finally {
      done = true;
      signal();
    }
  })();
  return {
    events,
    ended,
    isEnded: () => done,
    async waitFor(count, withinMs = DELIVERY_MS) {
      const deadline = Date.now() + withinMs;
      while (events.length < count) {
        const left = deadline - Date.now();
        if (done || left <= 0) throw new Error(`${label}: expected ${count} events within ${withinMs} ms, got ${events.length}: ${describeEvents(events)}`);
        await Promise.race([changed, sleep(left)]);
      }
      return events.slice(0, count);
    },
  };
}

function describeEvents(events: readonly BusEvent[]): string {
  return events.map((event) => (event.kind === "message" ? `message ${event.message.seq}` : event.kind)).join(", ");
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`${what} did not happen within ${ms} ms`);
    }),
  ]);
}

/**
 * What every EventBus engine must do, across gateways: each test gets a fresh cluster from `create`
 * (two or more buses on a shared backend) and disposes of it at the end. A device "connects" to a
 * gateway the way the device session does: registered in that gateway's registry (if any), then
 * subscribed on that gateway's bus.
 */
export function describeBusContract(engineName: string, create: () => Promise<BusCluster>): void {
  describe(`EventBus contract: ${engineName}`, () => {
    let cluster: BusCluster;
    const subscriptions: BusSubscription[] = [];
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const user = (name: string) => `u_${name}_${run}_${++counter}`;
    const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

    beforeEach(async () => {
      cluster = await create();
      expect(cluster.buses.length).toBeGreaterThanOrEqual(2);
    });

    afterEach(async () => {
      for (const subscription of subscriptions.splice(0)) subscription.close();
      await cluster.dispose();
    });

    async function connect(gateway: number, userId: string, options?: { bufferLimit?: number; deviceId?: string }): Promise<BusSubscription> {
      await cluster.registries?.[gateway]?.register(userId, options?.deviceId ?? `device-${gateway}`);
      const subscription = cluster.buses[gateway]!.subscribe(userId, options?.bufferLimit ? { bufferLimit: options.bufferLimit } : undefined);
      subscriptions.push(subscription);
      return subscription;
    }

    function message(seq: bigint, conversationId = "c_1"): BusEvent {
      return {
        kind: "message",
        message: {
          messageId: `m_${conversationId}_${seq}`,
          conversationId,
          senderUserId: "u_sender",
          senderDeviceId: "d_sender",
          clientMsgId: `client-${seq}`,
          kind: "text",
          text: `text ${seq} ✓ 🙂`,
          sentAt: new Date(T0 + Number(seq)),
          seq,
        },
      };
    }

    const seqs = (events: readonly BusEvent[]) => events.map((event) => (event.kind === "message" ? event.message.seq : -1n));

    it("delivers an event published on one gateway to every subscriber of each recipient, on every gateway, once", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const aliceHere = record(await connect(0, alice, { deviceId: "phone" }), "alice on the publishing gateway");
      const aliceThere = record(await connect(1, alice, { deviceId: "laptop" }), "alice on the other gateway");
      const bobThere = record(await connect(1, bob), "bob on the other gateway");

      const event = message(1n);
      await cluster.buses[0]!.publish([alice, bob], event);
      for (const recorder of [aliceHere, aliceThere, bobThere]) expect(await recorder.waitFor(1)).toEqual([event]);
      // A later event from the same publisher comes next: a second copy of the first would come before it.
      const marker = message(2n);
      await cluster.buses[0]!.publish([alice, bob], marker);
      for (const recorder of [aliceHere, aliceThere, bobThere]) expect(await recorder.waitFor(2)).toEqual([event, marker]);
      for (const recorder of [aliceHere, aliceThere, bobThere]) expect(recorder.events).toHaveLength(2);
    });

    it("round-trips every kind of event exactly: bigints stay bigints, dates stay dates", async () => {
      const alice = user("alice");
      const there = record(await connect(1, alice));
      const events: BusEvent[] = [
        {
          kind: "message",
          message: {
            ...(message(2n ** 62n + 7n) as Extract<BusEvent, { kind: "message" }>).message,
            kind: "system",
            systemJson: '{"joined":["u_x"]}',
            sentAt: new Date(T0),
          },
        },
        {
          kind: "receipt",
          receipt: { conversationId: "c_1", userId: "u_reader", deviceId: "d_reader", kind: "read", seq: 42n, at: new Date(T0 + 1) },
        },
        { kind: "typing", conversationId: "c_1", userId: "u_typist", typing: true, expiresAt: new Date(T0 + 2) },
        {
          kind: "conversation",
          change: "joined",
          conversation: { conversationId: "g_1", kind: "group", title: "Ünïcode \"quoted\" \\ title", createdAt: new Date(T0 + 3), lastSeq: 0n },
        },
        { kind: "device-revoked", deviceId: "d_lost" },
      ];
      for (const event of events) await cluster.buses[0]!.publish([alice], event);
      const received = await there.waitFor(events.length);
      expect(received).toEqual(events);
      const first = received[0] as Extract<BusEvent, { kind: "message" }>;
      expect(typeof first.message.seq).toBe("bigint");
      expect(first.message.sentAt).toBeInstanceOf(Date);
      expect((received[1] as Extract<BusEvent, { kind: "receipt" }>).receipt.at).toBeInstanceOf(Date);
    });

    it("keeps each publisher's order, also for publishes not awaited one by one, each event once", async () => {
      const alice = user("alice");
      const here = record(await connect(0, alice, { deviceId: "phone" }));
      const there = record(await connect(1, alice, { deviceId: "laptop" }));
      const count = 200;
      // Two publishers at once: each one's events must keep their order; the two streams may interleave.
      await Promise.all([
        Promise.all(Array.from({ length: count }, (_, i) => cluster.buses[0]!.publish([alice], message(BigInt(i + 1), "c_a")))),
        Promise.all(Array.from({ length: count }, (_, i) => cluster.buses[1]!.publish([alice], message(BigInt(i + 1), "c_b")))),
      ]);
      for (const recorder of [here, there]) {
        const events = await recorder.waitFor(count * 2);
        for (const conversationId of ["c_a", "c_b"]) {
          const ofPublisher = events.filter((event) => event.kind === "message" && event.message.conversationId === conversationId);
          expect(seqs(ofPublisher)).toEqual(Array.from({ length: count }, (_, i) => BigInt(i + 1)));
        }
      }
      // One marker per publisher, after all of its events: repeats would have come before them.
      await cluster.buses[0]!.publish([alice], message(BigInt(count + 1), "c_a"));
      await cluster.buses[1]!.publish([alice], message(BigInt(count + 1), "c_b"));
      for (const recorder of [here, there]) {
        const events = await recorder.waitFor(count * 2 + 2);
        for (const conversationId of ["c_a", "c_b"]) {
          const ofPublisher = events.filter((event) => event.kind === "message" && event.message.conversationId === conversationId);
          expect(seqs(ofPublisher)).toEqual(Array.from({ length: count + 1 }, (_, i) => BigInt(i + 1)));
        }
        expect(recorder.events).toHaveLength(count * 2 + 2);
      }
    });

    it("gives nothing to users who are not among the recipients", async () => {
      const alice = user("alice");
      const bob = user("bob");
      const ofAlice = record(await connect(1, alice));
      const ofBob = [record(await connect(0, bob)), record(await connect(1, bob))];
      await cluster.buses[0]!.publish([alice], message(1n));
      await cluster.buses[1]!.publish([alice], message(2n));
      await ofAlice.waitFor(2);
      // Then one event for Bob from each publisher: anything of Alice's sent his way would come first.
      await cluster.buses[0]!.publish([bob], message(3n));
      await cluster.buses[1]!.publish([bob], message(4n));
      for (const recorder of ofBob) expect(seqs(await recorder.waitFor(2)).sort()).toEqual([3n, 4n]);
      for (const recorder of ofBob) expect(recorder.events).toHaveLength(2);
    });

    it("does not replay earlier events to a later subscriber", async () => {
      const alice = user("alice");
      // Connected as far as the registry knows, but nobody is reading yet. Carol, reading on the same
      // gateway, gets the same event: once she has it, that gateway is done with it.
      await cluster.registries?.[1]?.register(alice, "phone");
      const carol = user("carol");
      const witness = record(await connect(1, carol));
      await cluster.buses[0]!.publish([alice, carol], message(1n));
      await witness.waitFor(1);
      const late = record(await connect(1, alice, { deviceId: "phone" }));
      await cluster.buses[0]!.publish([alice], message(2n));
      await cluster.buses[0]!.publish([alice], message(3n));
      expect(seqs(await late.waitFor(2))).toEqual([2n, 3n]);
      expect(late.events).toHaveLength(2);
    });

    it("resolves publish for recipients with no subscriber anywhere, and for no recipients", async () => {
      await within(cluster.buses[0]!.publish([user("nobody"), user("ghost")], message(1n)), DELIVERY_MS, "publish to nobody");
      await within(cluster.buses[1]!.publish([], message(2n)), DELIVERY_MS, "publish to no one");
    });

    it("ends only a subscription whose reader falls behind past its buffer limit, with BusOverflowError", async () => {
      const alice = user("alice");
      const slow = await connect(1, alice, { bufferLimit: 3, deviceId: "slow" });
      const fast = record(await connect(1, alice, { deviceId: "fast" }));
      const elsewhere = record(await connect(0, alice, { deviceId: "other" }));
      for (let i = 1; i <= 10; i++) await cluster.buses[0]!.publish([alice], message(BigInt(i)));
      expect(await within(slow.closed, DELIVERY_MS, "the overflow")).toBeInstanceOf(BusOverflowError);
      expect(seqs(await fast.waitFor(10))).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i + 1)));
      expect(await elsewhere.waitFor(10)).toHaveLength(10);
      await expect(record(slow).ended).resolves.toBeInstanceOf(BusOverflowError);

      // The bus itself keeps going.
      await cluster.buses[0]!.publish([alice], message(11n));
      expect(seqs(await fast.waitFor(11)).at(-1)).toBe(11n);
      expect(fast.isEnded()).toBe(false);
    });

    it("ends a subscription on close(), without an error, and delivers nothing more to it", async () => {
      const alice = user("alice");
      const closing = await connect(1, alice, { deviceId: "a" });
      const closingRecorder = record(closing);
      const staying = record(await connect(1, alice, { deviceId: "b" }));
      await sleep(10);
      closing.close();
      expect(await within(closingRecorder.ended, 1000, "the end of the iteration")).toBeUndefined();
      expect(await within(closing.closed, 1000, "closed")).toBeUndefined();
      await cluster.buses[0]!.publish([alice], message(1n));
      await staying.waitFor(1);
      // Its iteration has ended (above), so nothing can reach it any more: what it has is final.
      expect(closingRecorder.events).toEqual([]);
    });

    it("ends the subscription when the reader stops iterating", async () => {
      const alice = user("alice");
      const subscription = await connect(1, alice);
      const reading = (async () => {
        for await (const event of subscription) return event;
        return undefined;
      })();
      await cluster.buses[0]!.publish([alice], message(1n));
      expect(await within(reading, DELIVERY_MS, "the first event")).toEqual(message(1n));
      expect(await within(subscription.closed, 1000, "closed after break")).toBeUndefined();
    });

    it("ends every subscription of a bus on close() of that bus", async () => {
      const alice = user("alice");
      const last = cluster.buses.length - 1;
      const recorders = [record(await connect(last, alice, { deviceId: "a" })), record(await connect(last, user("bob")))];
      await cluster.buses[last]!.close();
      for (const recorder of recorders) expect(await within(recorder.ended, DELIVERY_MS, "the end of a subscription")).toBeUndefined();
      // Publishing on a closed bus is a no-op, not an error.
      await within(cluster.buses[last]!.publish([alice], message(1n)), DELIVERY_MS, "publish after close");
    });
  });
}
