import { connect } from "nats";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BusEvent, BusSubscription, EventBus, SessionRegistry } from "../../services/ports/index.js";
import { describeBusContract } from "../../test/contracts/bus-contract.js";
import { startNats, startRedis } from "../../test/support/services.js";
import { waitFor } from "../../test/support/wait.js";
import { createMemorySessionDirectory, createMemorySessionRegistry } from "../sessions-memory/index.js";
import { createRedisSessionRegistry } from "../sessions-redis/index.js";
import { BusEventsLostError, createNatsBus, type NatsBusOptions } from "./index.js";

let nats: Awaited<ReturnType<typeof startNats>>;
let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
});
afterAll(async () => {
  await Promise.all([nats?.dispose(), redis?.dispose()]);
});

const quiet = { warn: () => {} };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** What JetStream still holds for a gateway's consumer: not yet delivered, and delivered but not acked. */
async function backlog(server: { url: string }, streamName: string, gatewayId: string): Promise<{ pending: number; unacked: number }> {
  const admin = await connect({ servers: server.url });
  try {
    const info = await (await admin.jetstreamManager()).consumers.info(streamName, `gw_${gatewayId}`);
    return { pending: info.num_pending, unacked: info.num_ack_pending };
  } finally {
    await admin.close();
  }
}

/** Every cluster gets a stream and subjects of its own, so tests never see one another's traffic. */
const isolation = () => {
  const tag = Math.random().toString(36).slice(2, 8);
  return { streamName: `EV_${tag}`, subjectPrefix: `t${tag}` };
};

describeBusContract("nats, in-process session directory", async () => {
  const directory = createMemorySessionDirectory();
  const registries = ["gw-a", "gw-b"].map((gatewayId) => createMemorySessionRegistry({ gatewayId, directory }));
  const shared = isolation();
  const buses = await Promise.all(registries.map((sessions) => createNatsBus({ natsUrl: nats.url, gatewayId: sessions.gatewayId, sessions, ...shared, logger: quiet })));
  return {
    buses,
    registries,
    async dispose() {
      await Promise.all(buses.map((bus) => bus.close()));
      await Promise.all(registries.map((registry) => registry.close()));
    },
  };
});

describeBusContract("nats, redis session registry", async () => {
  const keyPrefix = `t:${Math.random().toString(36).slice(2, 8)}:`;
  const registries = ["gw-a", "gw-b", "gw-c"].map((gatewayId) => createRedisSessionRegistry({ redisUrl: redis.url, gatewayId, keyPrefix, logger: quiet }));
  const shared = isolation();
  const buses = await Promise.all(registries.map((sessions) => createNatsBus({ natsUrl: nats.url, gatewayId: sessions.gatewayId, sessions, ...shared, logger: quiet })));
  return {
    buses,
    registries,
    async dispose() {
      await Promise.all(buses.map((bus) => bus.close()));
      await Promise.all(registries.map((registry) => registry.close()));
    },
  };
});

function typing(n: number): BusEvent {
  return { kind: "typing", conversationId: `c_${n}`, userId: "u_typist", typing: true, expiresAt: new Date(1_700_000_000_000 + n) };
}
const numbers = (events: readonly BusEvent[]) => events.map((event) => (event.kind === "typing" ? Number(event.conversationId.slice(2)) : -1));

function collect(subscription: BusSubscription) {
  const events: BusEvent[] = [];
  const ended = (async () => {
    try {
      for await (const event of subscription) events.push(event);
    } catch (error) {
      return error;
    }
    return undefined;
  })();
  return {
    events,
    ended,
    async until(count: number, withinMs = 10_000): Promise<BusEvent[]> {
      const deadline = Date.now() + withinMs;
      while (events.length < count && Date.now() < deadline) await sleep(5);
      if (events.length < count) throw new Error(`expected ${count} events within ${withinMs} ms, got ${JSON.stringify(numbers(events))}`);
      return events.slice(0, count);
    },
  };
}

/** Two gateways on one stream; gateway b's registry entry for the users is made by the test. */
function twoGateways(server: { url: string }, overrides: Partial<NatsBusOptions> = {}) {
  const directory = createMemorySessionDirectory();
  const shared = { ...isolation(), logger: quiet, ...overrides };
  const sessionsA = createMemorySessionRegistry({ gatewayId: "gw-a", directory });
  const sessionsB = createMemorySessionRegistry({ gatewayId: "gw-b", directory });
  const opened: EventBus[] = [];
  const open = async (sessions: SessionRegistry, extra: Partial<NatsBusOptions> = {}) => {
    const bus = await createNatsBus({ natsUrl: server.url, gatewayId: sessions.gatewayId, sessions, ...shared, ...extra });
    opened.push(bus);
    return bus;
  };
  return {
    sessionsA,
    sessionsB,
    shared,
    open,
    async dispose() {
      await Promise.all(opened.map((bus) => bus.close()));
    },
  };
}

describe("nats bus", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("refuses a gateway id that is not a subject token, or one that differs from its registry's", async () => {
    const sessions = createMemorySessionRegistry({ gatewayId: "gw.a" });
    await expect(createNatsBus({ natsUrl: nats.url, gatewayId: "gw.a", sessions })).rejects.toThrow(RangeError);
    await expect(createNatsBus({ natsUrl: nats.url, gatewayId: "gw-b", sessions: createMemorySessionRegistry({ gatewayId: "gw-a" }) })).rejects.toThrow(RangeError);
  });

  it("delivers on this gateway even when the session registry fails, and does not reject", async () => {
    const failing: SessionRegistry = {
      ...createMemorySessionRegistry({ gatewayId: "gw-a" }),
      gatewaysOf: () => Promise.reject(new Error("registry down")),
    };
    const logs: string[] = [];
    const bus = await createNatsBus({ natsUrl: nats.url, gatewayId: "gw-a", sessions: failing, ...isolation(), logger: { warn: (_d, message) => logs.push(message) } });
    cleanups.push(() => bus.close());
    const here = collect(bus.subscribe("alice"));
    await bus.publish(["alice"], typing(1));
    await bus.publish(["alice"], typing(2));
    expect(numbers(await here.until(2))).toEqual([1, 2]);
    expect(logs.filter((message) => message.includes("registry"))).toHaveLength(1);
  });

  it("gives a gateway restarting under the same id what was published for it while it was down, in order", async () => {
    const cluster = twoGateways(nats);
    cleanups.push(() => cluster.dispose());
    const a = await cluster.open(cluster.sessionsA);
    let b = await cluster.open(cluster.sessionsB);
    await cluster.sessionsB.register("alice", "phone");
    const before = collect(b.subscribe("alice"));
    await a.publish(["alice"], typing(1));
    await before.until(1);

    await b.close();
    // The registry entry outlives the gateway (for up to its time-to-live in Redis).
    for (let n = 2; n <= 21; n++) await a.publish(["alice"], typing(n));
    // publish returns before NATS has the event (the outbox sends it): reopen once all 20 wait there.
    let waiting = { pending: 0, unacked: 0 };
    await waitFor(
      async () => (waiting = await backlog(nats, cluster.shared.streamName, "gw-b")).pending === 20,
      10_000,
      () => `the 20 events for the stopped gateway in its JetStream consumer (it holds ${JSON.stringify(waiting)})`,
    );

    b = await cluster.open(cluster.sessionsB);
    const after = collect(b.subscribe("alice"));
    expect(numbers(await after.until(20))).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    await a.publish(["alice"], typing(22));
    expect(numbers(await after.until(21)).at(-1)).toBe(22);
  });

  it("redelivers, after ackWait, what a killed gateway had fetched but not handed on", async () => {
    const cluster = twoGateways(nats, { ackWaitMs: 500 });
    cleanups.push(() => cluster.dispose());
    const a = await cluster.open(cluster.sessionsA);
    const b = await cluster.open(cluster.sessionsB);
    await cluster.sessionsB.register("alice", "phone");
    await b.close();
    for (let n = 1; n <= 5; n++) await a.publish(["alice"], typing(n));

    // A gateway that fetched three messages and died before acking them: a raw client in its place.
    const victim = await connect({ servers: nats.url });
    const consumer = await victim.jetstream().consumers.get(cluster.shared.streamName, "gw_gw-b");
    let fetched = 0;
    for await (const message of await consumer.fetch({ max_messages: 3, expires: 2000 })) {
      expect(message.redelivered).toBe(false);
      if (++fetched === 3) break;
    }
    await victim.close();

    const restarted = await cluster.open(cluster.sessionsB);
    const there = collect(restarted.subscribe("alice"));
    // The two it never fetched come at once, the three it held once their ack wait is over: all of
    // them once, but not in publish order.
    expect(numbers(await there.until(5))).toEqual([4, 5, 1, 2, 3]);
    // Nothing is left that JetStream could redeliver: everything handed on was acked.
    let left = { pending: -1, unacked: -1 };
    await waitFor(
      async () => {
        left = await backlog(nats, cluster.shared.streamName, "gw-b");
        return left.pending === 0 && left.unacked === 0;
      },
      10_000,
      () => `gateway b to ack all five (JetStream still holds ${JSON.stringify(left)})`,
    );
    // A later event comes next: no second copy of the redelivered three before it.
    await a.publish(["alice"], typing(6));
    expect(numbers(await there.until(6))).toEqual([4, 5, 1, 2, 3, 6]);
  });

  it("recreates its consumer when it is deleted from under it, and gets what was queued meanwhile", async () => {
    const cluster = twoGateways(nats);
    cleanups.push(() => cluster.dispose());
    const a = await cluster.open(cluster.sessionsA);
    const b = await cluster.open(cluster.sessionsB);
    await cluster.sessionsB.register("alice", "phone");
    const there = collect(b.subscribe("alice"));
    await a.publish(["alice"], typing(1));
    await there.until(1);

    const admin = await connect({ servers: nats.url });
    cleanups.push(() => admin.close());
    const jsm = await admin.jetstreamManager();
    await jsm.consumers.delete(cluster.shared.streamName, "gw_gw-b");
    for (let n = 2; n <= 6; n++) await a.publish(["alice"], typing(n));
    expect(numbers(await there.until(6))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  // How fast is measured in bench/; this checks what crosses over, and logs the latency seen.
  it("delivers a run of events from one gateway to another, each before the next is published", async () => {
    const cluster = twoGateways(nats);
    cleanups.push(() => cluster.dispose());
    const a = await cluster.open(cluster.sessionsA);
    const b = await cluster.open(cluster.sessionsB);
    await cluster.sessionsB.register("alice", "phone");
    const subscription = b.subscribe("alice");
    const iterator = subscription[Symbol.asyncIterator]();
    const latencies: number[] = [];
    const received: BusEvent[] = [];
    for (let n = 0; n < 300; n++) {
      const started = performance.now();
      await a.publish(["alice"], typing(n));
      const next = await iterator.next();
      if (next.done) throw new Error(`the subscription ended after ${n} events`);
      received.push(next.value);
      latencies.push(performance.now() - started);
    }
    subscription.close();
    const sorted = latencies.slice(50).sort((x, y) => x - y);
    const p50 = sorted[Math.floor(sorted.length * 0.5)]!;
    const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
    console.log(`bus-nats publish→deliver across gateways: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
    expect(numbers(received)).toEqual(Array.from({ length: 300 }, (_, n) => n));
  });
});

describe("nats bus with its own nats-server, stopped and restarted", () => {
  let own: Awaited<ReturnType<typeof startNats>>;
  beforeAll(async () => {
    own = await startNats();
  });
  afterAll(async () => {
    await own?.dispose();
  });

  it("keeps consuming after a nats-server restart mid-stream: nothing published before, during or after it is lost", async () => {
    const logs: string[] = [];
    const cluster = twoGateways(own, { logger: { warn: (_d, message) => logs.push(message) } });
    try {
      const a = await cluster.open(cluster.sessionsA);
      const b = await cluster.open(cluster.sessionsB);
      await cluster.sessionsB.register("alice", "phone");
      const there = collect(b.subscribe("alice"));
      const here = collect(a.subscribe("alice"));

      // A steady stream from gateway a while the server stops and starts again underneath it.
      let n = 0;
      let publishing = true;
      let publishedWhileDown = 0;
      let down = false;
      const stream = (async () => {
        while (publishing) {
          await a.publish(["alice"], typing(++n));
          // Resolved while no server runs: publish does not wait for NATS.
          if (down) publishedWhileDown++;
          await sleep(10);
        }
      })();
      await there.until(20);
      await own.stop();
      down = true;
      await waitFor(() => publishedWhileDown >= 10, 10_000, () => `10 publishes to resolve while nats-server is down (${publishedWhileDown} did)`);
      down = false;
      await own.restart();
      const restartedAt = n;
      // Publishing goes on until an event published after the restart has crossed over.
      await waitFor(() => numbers(there.events).some((seen) => seen > restartedAt), 15_000, () => `an event after #${restartedAt} at gateway b (it has ${there.events.length})`);
      publishing = false;
      await stream;

      // Everything, in order, once: the outbox held what was published while the server was away.
      // The last one published is the marker: a duplicate would have come before it.
      expect(numbers(await there.until(n, 15_000))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(numbers(here.events)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(logs.some((message) => message.includes("disconnected"))).toBe(true);
      expect(logs.some((message) => message.includes("reconnected"))).toBe(true);
      await a.publish(["alice"], typing(n + 1));
      expect(numbers(await there.until(n + 1))).toEqual(Array.from({ length: n + 1 }, (_, i) => i + 1));
    } finally {
      await cluster.dispose();
    }
  });

  it("ends the subscriptions of recipients whose events it had to drop during a long outage, so they resume from the store", async () => {
    const logs: string[] = [];
    const cluster = twoGateways(own, { outboxMaxAgeMs: 300, logger: { warn: (_d, message) => logs.push(message) } });
    try {
      const a = await cluster.open(cluster.sessionsA);
      const b = await cluster.open(cluster.sessionsB);
      await cluster.sessionsB.register("alice", "phone");
      await cluster.sessionsB.register("bob", "phone");
      const alice = collect(b.subscribe("alice"));
      const bob = collect(b.subscribe("bob"));
      await a.publish(["alice"], typing(1));
      await alice.until(1);

      await own.stop();
      await a.publish(["alice"], typing(2));
      // The outage has to outlast outboxMaxAgeMs: here time passing is the condition itself, and what
      // follows checks its outcome (a drop, and the subscription ended), not that nothing happened.
      await sleep(600);
      await own.restart();
      await waitFor(() => logs.some((message) => message.startsWith("dropped an event")), 10_000, () => `the outbox to drop the event it held past 300 ms (logs: ${JSON.stringify(logs)})`);

      expect(await Promise.race([alice.ended, sleep(15_000).then(() => "alice's subscription still open 15 s after the drop")])).toBeInstanceOf(BusEventsLostError);
      expect(numbers(alice.events)).toEqual([1]);
      // Bob lost nothing: his subscription carries on.
      await a.publish(["bob"], typing(3));
      expect(numbers(await bob.until(1))).toEqual([3]);
    } finally {
      await cluster.dispose();
    }
  });
});
