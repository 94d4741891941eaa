import type { RateDecision, RateLimit, RateLimiter } from "../../services/ports/index.js";

/** Past this many keys the least recently used bucket is forgotten (which refills it). */
const DEFAULT_MAX_KEYS = 100_000;
/** Float drift must not turn "exactly enough tokens" into a refusal. */
const EPSILON = 1e-9;
/** Nor must it turn a wait of exactly 1 ms into 2. */
const EPSILON_MS = 1e-6;

export interface MemoryRateLimiterOptions {
  /** Bounds the memory of a limiter keyed by user: see DEFAULT_MAX_KEYS. */
  readonly maxKeys?: number;
  /** The clock, in epoch milliseconds; for tests. */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was computed. */
  at: number;
}

/** Throws on a limit no bucket could honour, so a misconfiguration fails at startup rather than on the first send. */
export function checkRateLimit(limit: RateLimit): void {
  if (!(limit.ratePerSecond > 0) || !Number.isFinite(limit.ratePerSecond)) {
    throw new RangeError(`ratePerSecond must be a positive number, got ${limit.ratePerSecond}`);
  }
  if (!(limit.burst > 0) || !Number.isFinite(limit.burst)) throw new RangeError(`burst must be a positive number, got ${limit.burst}`);
}

/** A cost above the burst could never be allowed; that is a caller's bug, not a refusal. */
export function checkCost(limit: RateLimit, cost: number): void {
  if (!(cost > 0) || !Number.isFinite(cost) || cost > limit.burst) {
    throw new RangeError(`cost must be a positive number no larger than the burst (${limit.burst}), got ${cost}`);
  }
}

/**
 * The single-process token bucket. Buckets live in a Map kept in least-recently-used order, so a bucket
 * that has been idle long enough to be full again (and so is the same as no bucket) is dropped as soon
 * as it reaches the front; `maxKeys` caps the rest.
 */
export function createMemoryRateLimiter(limit: RateLimit, options: MemoryRateLimiterOptions = {}): RateLimiter {
  checkRateLimit(limit);
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  if (!(maxKeys >= 1)) throw new RangeError(`maxKeys must be at least 1, got ${maxKeys}`);
  const now = options.now ?? Date.now;
  const perMs = limit.ratePerSecond / 1000;
  const refillMs = limit.burst / perMs;
  const buckets = new Map<string, Bucket>();
  // A clock stepping back must not take tokens away or hand extra ones out.
  let lastTime = Number.NEGATIVE_INFINITY;
  const clock = () => (lastTime = Math.max(lastTime, now()));

  function forgetIdle(time: number): void {
    for (const [key, bucket] of buckets) {
      if (time - bucket.at < refillMs && buckets.size <= maxKeys) return;
      buckets.delete(key);
    }
  }

  return {
    async take(key, cost = 1): Promise<RateDecision> {
      checkCost(limit, cost);
      const time = clock();
      const known = buckets.get(key);
      const tokens = known ? Math.min(limit.burst, known.tokens + (time - known.at) * perMs) : limit.burst;
      buckets.delete(key);
      const allowed = tokens + EPSILON >= cost;
      const left = allowed ? Math.max(0, tokens - cost) : tokens;
      buckets.set(key, { tokens: left, at: time });
      forgetIdle(time);
      return { allowed, retryAfterMs: allowed ? 0 : Math.ceil((cost - left) / perMs - EPSILON_MS) };
    },
    async close() {
      buckets.clear();
    },
  } satisfies RateLimiter;
}
