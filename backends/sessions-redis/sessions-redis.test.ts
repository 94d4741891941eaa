import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeSessionRegistryContract } from "../../test/contracts/session-registry-contract.js";
import { startRedis } from "../../test/support/services.js";
import { createRedisSessionRegistry } from "./index.js";

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

describeSessionRegistryContract("redis", async () => {
  const keyPrefix = prefix();
  const registries = [
    createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-a", keyPrefix, logger: quiet }),
    createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-b", keyPrefix, logger: quiet }),
  ] as const;
  return { registries, dispose: async () => void (await Promise.all(registries.map((registry) => registry.close()))) };
});

describe("redis session registry", () => {
  it("keeps its devices alive across many time-to-lives by refreshing them", async () => {
    const keyPrefix = prefix();
    const registry = createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-a", keyPrefix, ttlMs: 150, logger: quiet });
    try {
      await registry.register("alice", "phone");
      await sleep(600);
      expect(await registry.devicesOf("alice")).toEqual([{ deviceId: "phone", gatewayId: "gw-a" }]);
    } finally {
      await registry.close();
    }
  });

  it("drops the entries of a gateway that stopped refreshing (died) after their time-to-live, trimming them on read", async () => {
    const keyPrefix = prefix();
    const registry = createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-a", keyPrefix, logger: quiet });
    const raw = new Redis(redis.url);
    try {
      await registry.register("alice", "phone");
      // What a gateway that was killed leaves behind: an entry nobody refreshes any more.
      const time = await raw.time();
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      await raw.zadd(`${keyPrefix}alice`, String(now + 150), "laptop|gw-dead");
      expect((await registry.gatewaysOf(["alice"])).get("alice")?.sort()).toEqual(["gw-a", "gw-dead"]);
      await sleep(200);
      expect(await registry.gatewaysOf(["alice"])).toEqual(new Map([["alice", ["gw-a"]]]));
      expect(await raw.zrange(`${keyPrefix}alice`, 0, "-1")).toEqual(["phone|gw-a"]);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });

  it("lets a user's key expire with its latest entry, so idle users leave nothing behind", async () => {
    const keyPrefix = prefix();
    const registry = createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-a", keyPrefix, ttlMs: 3000, logger: quiet });
    const raw = new Redis(redis.url);
    try {
      await registry.register("alice", "phone");
      const ttl = await raw.pttl(`${keyPrefix}alice`);
      expect(ttl).toBeGreaterThan(2000);
      expect(ttl).toBeLessThanOrEqual(3000);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });

  it("keeps device ids containing the separator intact", async () => {
    const keyPrefix = prefix();
    const registry = createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "gw-a", keyPrefix, logger: quiet });
    try {
      await registry.register("alice", "odd|device");
      expect(await registry.devicesOf("alice")).toEqual([{ deviceId: "odd|device", gatewayId: "gw-a" }]);
    } finally {
      await registry.close();
    }
  });

  it("refuses a gateway id with the separator", () => {
    expect(() => createRedisSessionRegistry({ redisUrl: redis.url, gatewayId: "a|b" })).toThrow(RangeError);
  });

  describe("with its own redis-server, restarted empty", () => {
    let own: Awaited<ReturnType<typeof startRedis>>;
    beforeAll(async () => {
      own = await startRedis();
    });
    afterAll(async () => {
      await own?.dispose();
    });

    it("writes its devices again after a restart even when its refresh has run with no devices to write", async () => {
      const registry = createRedisSessionRegistry({ redisUrl: own.url, gatewayId: "gw-a", ttlMs: 600, commandTimeoutMs: 300, logger: quiet });
      const reader = createRedisSessionRegistry({ redisUrl: own.url, gatewayId: "gw-b", commandTimeoutMs: 300, logger: quiet });
      try {
        // A gateway between devices: its periodic refresh finds nothing to write, several times.
        await sleep(500);
        await registry.register("carol", "phone");
        await own.restart();
        const deadline = Date.now() + 5_000;
        let found = new Map<string, string[]>();
        while (Date.now() < deadline && found.size === 0) {
          found = await reader.gatewaysOf(["carol"]).catch(() => new Map());
          await sleep(25);
        }
        expect(found).toEqual(new Map([["carol", ["gw-a"]]]));
      } finally {
        await Promise.all([registry.close(), reader.close()]);
      }
    });

    it("registers its devices again once Redis is back, including those registered during the outage", async () => {
      const logs: string[] = [];
      const registry = createRedisSessionRegistry({
        redisUrl: own.url,
        gatewayId: "gw-a",
        ttlMs: 3000,
        commandTimeoutMs: 300,
        logger: { warn: (_details, message) => logs.push(message) },
      });
      const reader = createRedisSessionRegistry({ redisUrl: own.url, gatewayId: "gw-b", commandTimeoutMs: 300, logger: quiet });
      try {
        await registry.register("alice", "phone");
        expect(await reader.gatewaysOf(["alice"])).toEqual(new Map([["alice", ["gw-a"]]]));

        await own.stop();
        // Fails soft: the device's connection must not fail because the registry is down.
        await registry.register("bob", "laptop");
        await expect(reader.gatewaysOf(["alice"])).rejects.toThrow();
        expect(logs.some((message) => message.includes("unreachable"))).toBe(true);

        await own.restart();
        // Redis came back empty; the registry writes its devices as soon as it is connected again,
        // long before its next periodic refresh (1 s).
        const deadline = Date.now() + 900;
        let found = new Map<string, string[]>();
        while (Date.now() < deadline) {
          found = await reader.gatewaysOf(["alice", "bob"]).catch(() => new Map());
          if (found.size === 2) break;
          await sleep(25);
        }
        expect(found).toEqual(
          new Map([
            ["alice", ["gw-a"]],
            ["bob", ["gw-a"]],
          ]),
        );
      } finally {
        await Promise.all([registry.close(), reader.close()]);
      }
    });
  });
});
