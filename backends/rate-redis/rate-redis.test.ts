import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RateLimiter } from "../../services/ports/index.js";
import { describeRateLimiterContract } from "../../test/contracts/rate-limiter-contract.js";
import { startRedis } from "../../test/support/services.js";
import { createRedisRateLimiter } from "./index.js";

let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.dispose();
});

const quiet = { warn: () => {} };
const prefix = () => `t:${Math.random().toString(36).slice(2, 8)}:`;

describeRateLimiterContract("redis", (limit) => createRedisRateLimiter({ redisUrl: redis.url, limit, keyPrefix: prefix(), logger: quiet }));

describe("redis rate limiter", () => {
  it("shares one bucket between gateways, atomically", async () => {
    const keyPrefix = prefix();
    const limit = { ratePerSecond: 0.5, burst: 7 };
    const gateways = [0, 1, 2].map(() => createRedisRateLimiter({ redisUrl: redis.url, limit, keyPrefix, logger: quiet }));
    try {
      const decisions = await Promise.all(gateways.flatMap((gateway) => Array.from({ length: 10 }, () => gateway.take("shared"))));
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(7);
    } finally {
      await Promise.all(gateways.map((gateway) => gateway.close()));
    }
  });

  it("lets an idle bucket's key expire once it would be full again", async () => {
    const keyPrefix = prefix();
    const limiter = createRedisRateLimiter({ redisUrl: redis.url, limit: { ratePerSecond: 10, burst: 2 }, keyPrefix, logger: quiet });
    const raw = new Redis(redis.url);
    try {
      await limiter.take("k", 2);
      const ttl = await raw.pttl(`${keyPrefix}k`);
      // 200 ms to refill plus a second of slack.
      expect(ttl).toBeGreaterThan(1000);
      expect(ttl).toBeLessThanOrEqual(1200);
    } finally {
      raw.disconnect();
      await limiter.close();
    }
  });

  describe("with its own redis-server, stopped and restarted", () => {
    let own: Awaited<ReturnType<typeof startRedis>>;
    let limiter: RateLimiter;
    const logs: string[] = [];
    beforeAll(async () => {
      own = await startRedis();
      limiter = createRedisRateLimiter({
        redisUrl: own.url,
        limit: { ratePerSecond: 1, burst: 2 },
        commandTimeoutMs: 200,
        logger: { warn: (_details, message) => logs.push(message) },
      });
    });
    afterAll(async () => {
      await limiter?.close();
      await own?.dispose();
    });

    it("falls back to a per-gateway bucket while Redis is down (neither refusing everyone nor allowing all), and shares again after", async () => {
      expect((await limiter.take("before")).allowed).toBe(true);
      await own.stop();
      const started = Date.now();
      const during = await Promise.all([1, 2, 3].map(() => limiter.take("during")));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(during.map((decision) => decision.allowed)).toEqual([true, true, false]);
      expect(logs.some((message) => message.includes("unreachable"))).toBe(true);

      await own.restart();
      const deadline = Date.now() + 5000;
      while (!logs.some((message) => message.includes("reachable again")) && Date.now() < deadline) {
        await limiter.take(`probe-${Date.now()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(logs.some((message) => message.includes("reachable again"))).toBe(true);
      // Redis lost its buckets in the restart: "during" starts full there.
      expect((await limiter.take("during")).allowed).toBe(true);
    });
  });
});
