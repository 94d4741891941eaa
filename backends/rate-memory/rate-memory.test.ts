import { describe, expect, it } from "vitest";
import { describeRateLimiterContract } from "../../test/contracts/rate-limiter-contract.js";
import { createMemoryRateLimiter } from "./index.js";

describeRateLimiterContract("memory", (limit) => createMemoryRateLimiter(limit));

describe("memory rate limiter", () => {
  function manual(limit = { ratePerSecond: 10, burst: 2 }, maxKeys?: number) {
    let time = 0;
    const limiter = createMemoryRateLimiter(limit, { now: () => time, maxKeys });
    return { limiter, at: (ms: number) => void (time = ms) };
  }

  it("refuses a limit no bucket could honour", () => {
    expect(() => createMemoryRateLimiter({ ratePerSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => createMemoryRateLimiter({ ratePerSecond: 1, burst: 0 })).toThrow(RangeError);
    expect(() => createMemoryRateLimiter({ ratePerSecond: Number.NaN, burst: 1 })).toThrow(RangeError);
  });

  it("refills exactly at the rate", async () => {
    const { limiter, at } = manual();
    at(0);
    expect((await limiter.take("k", 2)).allowed).toBe(true);
    expect(await limiter.take("k")).toEqual({ allowed: false, retryAfterMs: 100 });
    at(99);
    expect(await limiter.take("k")).toEqual({ allowed: false, retryAfterMs: 1 });
    at(100);
    expect(await limiter.take("k")).toEqual({ allowed: true, retryAfterMs: 0 });
  });

  it("neither gives nor takes tokens when the clock steps back", async () => {
    const { limiter, at } = manual();
    at(1000);
    await limiter.take("k", 2);
    at(0);
    expect((await limiter.take("k")).allowed).toBe(false);
    at(1100);
    expect((await limiter.take("k")).allowed).toBe(true);
  });

  it("forgets the least recently used bucket past maxKeys, which refills it", async () => {
    const { limiter, at } = manual({ ratePerSecond: 1, burst: 1 }, 2);
    at(0);
    for (const key of ["a", "b", "c"]) expect((await limiter.take(key)).allowed).toBe(true);
    // "a" was pushed out, so it starts full again; "c" was kept.
    expect((await limiter.take("a")).allowed).toBe(true);
    expect((await limiter.take("c")).allowed).toBe(false);
  });
});
