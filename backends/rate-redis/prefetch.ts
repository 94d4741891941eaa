import type { RateDecision, RateLimiter } from "../../services/ports/index.js";

export interface PrefetchOptions {
  /** Most tokens one round trip draws for a key (also capped by the limit's burst). */
  readonly maxChunk: number;
  /** How long drawn tokens may wait here before they are dropped. */
  readonly holdMs: number;
  /** The limit's burst: a chunk never asks for more. */
  readonly burst: number;
  readonly now?: () => number;
}

interface Allowance {
  tokens: number;
  expiresAt: number;
  /** What the last draw took: the next one takes twice as much if this one is used up in time. */
  drawn: number;
}

const MAX_KEYS = 100_000;

/**
 * Takes tokens from a shared limiter (Redis: a round trip per take) in chunks, and answers the next
 * takes of the same key from what it drew. Safe because every token it grants was taken from the
 * shared bucket first: the cluster's limit holds as before, only shifted by at most `holdMs` for at
 * most a chunk per key and gateway. A fast sender costs a round trip every few sends instead of every
 * send (the chunk doubles each time one is used up within holdMs, up to maxChunk); a slow one draws
 * exactly what each take costs, as before.
 */
export function prefetchingLimiter(shared: RateLimiter, options: PrefetchOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const maxChunk = Math.max(1, Math.min(Math.floor(options.maxChunk), Math.floor(options.burst)));
  const allowances = new Map<string, Allowance>();

  return {
    async take(key, cost = 1): Promise<RateDecision> {
      const at = now();
      const allowance = allowances.get(key);
      const valid = allowance !== undefined && allowance.expiresAt > at;
      if (valid && allowance.tokens >= cost) {
        allowance.tokens -= cost;
        return { allowed: true, retryAfterMs: 0 };
      }
      // Used up while still valid: a fast sender, draw more. Otherwise (first take, or the last
      // allowance expired): exactly what this take costs, so a slow sender wastes nothing.
      const want = valid ? Math.max(cost, Math.min(maxChunk, allowance.drawn * 2)) : cost;
      let decision = await shared.take(key, want);
      let drawn = want;
      if (!decision.allowed && want > cost) {
        // Not enough for a chunk: the exact amount still decides, as without prefetching.
        decision = await shared.take(key, cost);
        drawn = cost;
      }
      if (!decision.allowed) return decision;
      const kept = allowances.get(key) ?? { tokens: 0, expiresAt: 0, drawn: 0 };
      allowances.delete(key);
      if (allowances.size >= MAX_KEYS) allowances.delete(allowances.keys().next().value!);
      kept.tokens = (kept.expiresAt > now() ? kept.tokens : 0) + drawn - cost;
      kept.expiresAt = now() + options.holdMs;
      kept.drawn = drawn;
      allowances.set(key, kept);
      return { allowed: true, retryAfterMs: 0 };
    },
    close: () => shared.close(),
  };
}
