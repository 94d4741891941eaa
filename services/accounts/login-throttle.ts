import { ChatError, ErrorReason } from "../errors.js";
import type { RateLimiter } from "../ports/index.js";

/**
 * Three token buckets every login attempt draws from, before any password is hashed:
 *
 * - `accountAddress`: one account from one client address; the tight one, it stops guessing.
 * - `address`: one client address across all accounts; stops trying one password on many accounts.
 * - `account`: one account from all addresses; bounds a guesser spread over many addresses. It is
 *   several times larger than `accountAddress`, so one attacker's failures leave the owner, logging
 *   in from elsewhere, room to get in.
 *
 * Each bucket refills slowly, so a guesser that keeps going waits longer and longer between tries.
 * The limiters come from the rate-limiter port: shared by every gateway through Redis in a cluster.
 */
export interface LoginLimiters {
  readonly accountAddress: RateLimiter;
  readonly address: RateLimiter;
  readonly account: RateLimiter;
}

export type LoginThrottle = (username: string, clientAddress: string) => Promise<void>;

export function rateLimited(what: string, retryAfterMs: number): ChatError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ChatError("resource_exhausted", ErrorReason.RATE_LIMITED, `too many ${what}: wait ${seconds} s before trying again`, "", {
    retry_after_ms: String(retryAfterMs),
  });
}

export function createLoginThrottle(limiters: LoginLimiters): LoginThrottle {
  return async (username, clientAddress) => {
    const address = clientAddress || "unknown";
    // One bucket after the other, narrowest first: an attempt refused by a narrow bucket takes nothing
    // from the wider ones, so one address's guessing cannot drain the account's bucket for everyone.
    const steps: [RateLimiter, string][] = [
      [limiters.accountAddress, `${username}|${address}`],
      [limiters.address, address],
      [limiters.account, username],
    ];
    for (const [limiter, key] of steps) {
      const decision = await limiter.take(key);
      if (!decision.allowed) throw rateLimited("login attempts", decision.retryAfterMs);
    }
  };
}
