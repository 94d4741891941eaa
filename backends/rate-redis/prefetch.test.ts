import { describe, expect, it } from "vitest";
import type { RateLimiter } from "../../services/ports/index.js";
import { describeRateLimiterContract } from "../../test/contracts/rate-limiter-contract.js";
import { createMemoryRateLimiter } from "../rate-memory/index.js";
import { prefetchingLimiter } from "./prefetch.js";

describeRateLimiterContract("prefetching, over an in-process bucket", (limit) =>
  prefetchingLimiter(createMemoryRateLimiter(limit), { maxChunk: 8, holdMs: 1_000, burst: limit.burst }),
);

/** The shared bucket, counting the round trips a gateway would make to it. */
function counted(shared: RateLimiter) {
  let calls = 0;
  return {
    limiter: { take: (key: string, cost?: number) => (calls++, shared.take(key, cost)), close: () => shared.close() } satisfies RateLimiter,
    calls: () => calls,
  };
}

describe("prefetching rate limiter", () => {
  it("answers most of a fast sender's takes without a round trip, and grants exactly the shared bucket's budget", async () => {
    const shared = counted(createMemoryRateLimiter({ ratePerSecond: 0.001, burst: 40 }));
    const limiter = prefetchingLimiter(shared.limiter, { maxChunk: 8, holdMs: 1_000, burst: 40 });
    const decisions = [];
    for (let i = 0; i < 50; i++) decisions.push(await limiter.take("sender"));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(40);
    expect(decisions.slice(0, 40).every((d) => d.allowed)).toBe(true);
    // 1 + 2 + 4 + 8 + 8 + 8 = 31 in six draws, then 8 and 1 refused as a chunk but granted one by one.
    expect(shared.calls()).toBeLessThan(30);
  });

  it("never grants more than the shared bucket, however many gateways draw from it", async () => {
    const shared = createMemoryRateLimiter({ ratePerSecond: 0.001, burst: 7 });
    const gateways = [0, 1, 2].map(() => prefetchingLimiter(shared, { maxChunk: 8, holdMs: 1_000, burst: 7 }));
    const decisions = [];
    for (let round = 0; round < 10; round++) for (const gateway of gateways) decisions.push(await gateway.take("shared"));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(7);
  });

  it("draws exactly one token per take for a slow sender: nothing is held back from its budget", async () => {
    let clock = 0;
    const shared = counted(createMemoryRateLimiter({ ratePerSecond: 0.001, burst: 3 }, { now: () => clock }));
    const limiter = prefetchingLimiter(shared.limiter, { maxChunk: 8, holdMs: 1_000, burst: 3, now: () => clock });
    const decisions = [];
    for (let i = 0; i < 4; i++) {
      decisions.push(await limiter.take("slow"));
      clock += 5_000;
    }
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(shared.calls()).toBe(4);
  });
});
