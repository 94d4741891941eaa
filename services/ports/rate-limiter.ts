export interface RateDecision {
  readonly allowed: boolean;
  /** When refused: how long until the cost would be allowed. */
  readonly retryAfterMs: number;
}

/** A token bucket per key: `ratePerSecond` tokens flow in, at most `burst` wait. */
export interface RateLimiter {
  take(key: string, cost?: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export interface RateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}
