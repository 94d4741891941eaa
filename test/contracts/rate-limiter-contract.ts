import { afterEach, describe, expect, it } from "vitest";
import type { RateLimit, RateLimiter } from "../../services/ports/index.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Slack for timer jitter and, for a networked engine, a round trip. */
const TOLERANCE_MS = 40;

/**
 * What every RateLimiter engine must do, on real timers with small limits. Each test builds its
 * limiters through `create` (called with the limit the test needs) and closes them at the end.
 */
export function describeRateLimiterContract(engineName: string, create: (limit: RateLimit) => Promise<RateLimiter> | RateLimiter): void {
  describe(`RateLimiter contract: ${engineName}`, () => {
    const opened: RateLimiter[] = [];
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const key = (name: string) => `${name}:${run}:${++counter}`;

    async function limiter(limit: RateLimit): Promise<RateLimiter> {
      const created = await create(limit);
      opened.push(created);
      return created;
    }

    afterEach(async () => {
      for (const each of opened.splice(0)) await each.close();
    });

    async function takeMany(target: RateLimiter, bucket: string, count: number): Promise<boolean[]> {
      const results: boolean[] = [];
      for (let i = 0; i < count; i++) results.push((await target.take(bucket)).allowed);
      return results;
    }

    it("allows the burst at once, then refuses and says how long to wait", async () => {
      const target = await limiter({ ratePerSecond: 10, burst: 3 });
      const bucket = key("burst");
      for (let i = 0; i < 3; i++) expect(await target.take(bucket)).toEqual({ allowed: true, retryAfterMs: 0 });
      const refused = await target.take(bucket);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
    });

    it("refills at the rate: after retryAfterMs one more is allowed, not a burst", async () => {
      const target = await limiter({ ratePerSecond: 10, burst: 3 });
      const bucket = key("refill");
      await takeMany(target, bucket, 3);
      const refused = await target.take(bucket);
      expect(refused.allowed).toBe(false);
      await sleep(refused.retryAfterMs + 5);
      expect((await target.take(bucket)).allowed).toBe(true);
      expect((await target.take(bucket)).allowed).toBe(false);
    });

    it("does not spend tokens on refused takes", async () => {
      const target = await limiter({ ratePerSecond: 20, burst: 1 });
      const bucket = key("refused");
      expect((await target.take(bucket)).allowed).toBe(true);
      const first = await target.take(bucket);
      for (let i = 0; i < 5; i++) expect((await target.take(bucket)).allowed).toBe(false);
      await sleep(first.retryAfterMs + 5);
      expect((await target.take(bucket)).allowed).toBe(true);
    });

    it("never holds more than the burst, however long the bucket was idle", async () => {
      const target = await limiter({ ratePerSecond: 50, burst: 3 });
      const bucket = key("idle");
      await takeMany(target, bucket, 3);
      await sleep(300); // enough for 15 tokens
      expect(await takeMany(target, bucket, 4)).toEqual([true, true, true, false]);
    });

    it("keeps one bucket per key", async () => {
      const target = await limiter({ ratePerSecond: 1, burst: 2 });
      const [a, b] = [key("a"), key("b")];
      expect(await takeMany(target, a, 3)).toEqual([true, true, false]);
      expect(await takeMany(target, b, 3)).toEqual([true, true, false]);
    });

    it("spends the cost, and tells how long until the whole cost is available", async () => {
      const target = await limiter({ ratePerSecond: 10, burst: 5 });
      const bucket = key("cost");
      expect((await target.take(bucket, 4)).allowed).toBe(true);
      const refused = await target.take(bucket, 3);
      expect(refused.allowed).toBe(false);
      // One token left, two more needed: about 200 ms at 10 per second.
      expect(refused.retryAfterMs).toBeGreaterThan(200 - TOLERANCE_MS);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
      expect((await target.take(bucket, 1)).allowed).toBe(true);
    });

    it("never lets concurrent takes spend the same token twice", async () => {
      const target = await limiter({ ratePerSecond: 0.5, burst: 5 });
      const bucket = key("concurrent");
      const decisions = await Promise.all(Array.from({ length: 20 }, () => target.take(bucket)));
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
    });

    it("rejects a cost that no bucket could ever allow", async () => {
      const target = await limiter({ ratePerSecond: 10, burst: 3 });
      for (const cost of [0, -1, 4, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(target.take(key("bad"), cost)).rejects.toBeInstanceOf(RangeError);
      }
    });
  });
}
