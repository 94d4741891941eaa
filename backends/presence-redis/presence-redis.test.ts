import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PresenceState, PresenceWatch } from "../../services/ports/index.js";
import { describePresenceContract } from "../../test/contracts/presence-contract.js";
import { startRedis } from "../../test/support/services.js";
import { createRedisPresence } from "./index.js";

let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.dispose();
});

const quiet = { warn: () => {} };
const prefix = () => `t:${Math.random().toString(36).slice(2, 8)}:`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describePresenceContract("redis", ({ timeoutMs }) => createRedisPresence({ redisUrl: redis.url, timeoutMs, keyPrefix: prefix(), logger: quiet }));

/** Collects a watch's changes in the background. */
function collect(watch: PresenceWatch) {
  const events: PresenceState[] = [];
  const ended = (async () => {
    try {
      for await (const event of watch) events.push(event);
    } catch (error) {
      return error;
    }
    return undefined;
  })();
  return {
    events,
    ended,
    async until(count: number, withinMs = 3000): Promise<PresenceState[]> {
      const deadline = Date.now() + withinMs;
      while (events.length < count && Date.now() < deadline) await sleep(10);
      if (events.length < count) throw new Error(`expected ${count} changes, got ${JSON.stringify(events)}`);
      return events.slice(0, count);
    },
  };
}

const summary = (events: readonly PresenceState[]) => events.map((event) => `${event.userId}:${event.online ? "on" : "off"}`);

describe("redis presence across gateways", () => {
  it("shares state between registries, and each expiry is reported once to every watcher whichever gateway swept it", async () => {
    const keyPrefix = prefix();
    const gateways = [0, 1, 2].map(() => createRedisPresence({ redisUrl: redis.url, timeoutMs: 150, sweepIntervalMs: 20, keyPrefix, logger: quiet }));
    try {
      const watches = gateways.map((gateway) => collect(gateway.watch(["alice"])));
      await sleep(50);
      await gateways[0]!.heartbeat("alice", "phone");
      await gateways[1]!.heartbeat("alice", "laptop");
      expect((await gateways[2]!.lookup(["alice"]))[0]!.online).toBe(true);
      for (const watch of watches) expect(summary(await watch.until(2))).toEqual(["alice:on", "alice:off"]);
      expect((await gateways[1]!.lookup(["alice"]))[0]!.online).toBe(false);
      // Alice comes back: a second report of the expiry, from another sweeper, would come before it.
      await gateways[2]!.heartbeat("alice", "tablet");
      for (const watch of watches) expect(summary(await watch.until(3))).toEqual(["alice:on", "alice:off", "alice:on"]);
    } finally {
      await Promise.all(gateways.map((gateway) => gateway.close()));
    }
  });

  it("reports a heartbeat that comes after its device's deadline, before any sweep, as offline then online", async () => {
    const keyPrefix = prefix();
    // A sweep interval far beyond the test: only the heartbeat itself can notice the expiry.
    const registry = createRedisPresence({ redisUrl: redis.url, timeoutMs: 100, sweepIntervalMs: 60_000, keyPrefix, logger: quiet });
    try {
      const watch = collect(registry.watch(["alice"]));
      await sleep(30);
      await registry.heartbeat("alice", "phone");
      await sleep(150);
      expect((await registry.lookup(["alice"]))[0]!.online).toBe(false);
      await registry.heartbeat("alice", "phone");
      expect(summary(await watch.until(3))).toEqual(["alice:on", "alice:off", "alice:on"]);
    } finally {
      await registry.close();
    }
  });

  it("handles user and device ids with the separators in them", async () => {
    const keyPrefix = prefix();
    const registry = createRedisPresence({ redisUrl: redis.url, timeoutMs: 100, sweepIntervalMs: 20, keyPrefix, logger: quiet });
    try {
      const odd = "u|odd:12:x";
      const watch = collect(registry.watch([odd]));
      await registry.heartbeat(odd, "dev|ice:3");
      expect(summary(await watch.until(2))).toEqual([`${odd}:on`, `${odd}:off`]);
    } finally {
      await registry.close();
    }
  });

  describe("with its own redis-server, stopped and restarted empty", () => {
    let own: Awaited<ReturnType<typeof startRedis>>;
    beforeAll(async () => {
      own = await startRedis();
    });
    afterAll(async () => {
      await own?.dispose();
    });

    it("fails soft while Redis is down, then recovers: live devices stay online, vanished ones go offline, watchers get transitions again", async () => {
      const logs: string[] = [];
      const registry = createRedisPresence({
        redisUrl: own.url,
        timeoutMs: 300,
        sweepIntervalMs: 50,
        commandTimeoutMs: 300,
        logger: { warn: (_details, message) => logs.push(message) },
      });
      let beating = true;
      let beat: Promise<void> = Promise.resolve();
      try {
        const watch = collect(registry.watch(["alice", "bob"]));
        await registry.heartbeat("alice", "phone");
        await registry.heartbeat("bob", "phone");
        await watch.until(2);
        // Alice's device keeps heartbeating through the outage; Bob's goes away during it.
        beat = (async () => {
          while (beating) {
            await registry.heartbeat("alice", "phone");
            await sleep(50);
          }
        })();

        await own.stop();
        // Opened while Redis is away: its SUBSCRIBE cannot get through now.
        const late = collect(registry.watch(["carol"]));
        const started = Date.now();
        await registry.heartbeat("bob", "phone");
        await registry.disconnect("bob", "phone");
        expect(Date.now() - started).toBeLessThan(2000);
        await expect(registry.lookup(["alice"])).rejects.toThrow();
        expect(logs.some((message) => message.includes("unreachable"))).toBe(true);

        await own.restart();
        // Redis lost every state; Bob's offline comes from the re-read after timeout + sweep, Alice
        // is re-created by her heartbeats without a spurious change.
        const [, , bobOffline] = await watch.until(3, 3000);
        expect(bobOffline).toMatchObject({ userId: "bob", online: false });
        expect(bobOffline!.lastSeen).toBeInstanceOf(Date);
        // A spurious change of Alice's would come before the transitions below, and show in their list.
        expect(summary(watch.events)).toEqual(["alice:on", "bob:on", "bob:off"]);
        expect((await registry.lookup(["alice"]))[0]!.online).toBe(true);

        // The resubscribed channels carry transitions again.
        beating = false;
        await beat;
        await registry.disconnect("alice", "phone");
        await registry.heartbeat("bob", "tablet");
        expect(summary(await watch.until(5))).toEqual(["alice:on", "bob:on", "bob:off", "alice:off", "bob:on"]);
        await registry.heartbeat("carol", "phone");
        expect(summary(await late.until(1))).toEqual(["carol:on"]);
      } finally {
        beating = false;
        await beat;
        await registry.close();
      }
    });
  });
});
