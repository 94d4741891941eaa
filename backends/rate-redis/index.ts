import { Redis } from "ioredis";
import type { RateDecision, RateLimit, RateLimiter } from "../../services/ports/index.js";
import { checkCost, checkRateLimit, createMemoryRateLimiter } from "../rate-memory/index.js";

/** What this engine logs: an outage and its end (pino's `warn(obj, msg)` fits). */
export interface RateLogger {
  warn(details: object, message: string): void;
}

export interface RedisRateLimiterOptions {
  readonly redisUrl: string;
  readonly limit: RateLimit;
  /** Prefix of the bucket keys: one hash per key. */
  readonly keyPrefix?: string;
  /**
   * A take that Redis has not answered by then is decided by the local fallback instead: a rate limiter
   * sits on the send path and must not add an outage's worth of latency to it.
   */
  readonly commandTimeoutMs?: number;
  readonly logger?: RateLogger;
}

const DEFAULT_KEY_PREFIX = "chat:rate:";
const DEFAULT_COMMAND_TIMEOUT_MS = 500;

/**
 * KEYS[1] bucket; ARGV tokens per ms, burst, cost. Returns {allowed, retryAfterMs}. The bucket is a
 * hash {tokens, at} on Redis' clock, so every gateway draws from the same bucket whatever its own
 * clock says; it expires once it would be full again, since a full bucket and no bucket are the same.
 * A clock step back on Redis only pauses the refill.
 */
const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local allowed = 0
local wait = 0
if tokens + 1e-9 >= cost then
  allowed = 1
  tokens = math.max(0, tokens - cost)
else
  wait = math.ceil((cost - tokens) / rate - 1e-6)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', at)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {allowed, wait}`;

interface RateCommands {
  chatRateTake(key: string, perMs: number, burst: number, cost: number): Promise<[number, number]>;
}

/**
 * A token bucket per key shared by every gateway: one Lua script per take, so concurrent takes from
 * several gateways never spend the same token twice.
 *
 * When Redis is unreachable (or slower than commandTimeoutMs) the take is decided by an in-process
 * bucket with the same limit instead of failing: senders are neither refused because of our outage
 * nor let through unlimited. For the outage the limit holds per gateway rather than for the cluster
 * (at most N times the rate with N gateways). The outage and its end are logged once each.
 */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const { limit } = options;
  checkRateLimit(limit);
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const logger = options.logger ?? { warn: (details, message) => console.warn(`[rate-redis] ${message}`, details) };
  const perMs = limit.ratePerSecond / 1000;
  const fallback = createMemoryRateLimiter(limit);

  const redis = new Redis(options.redisUrl, {
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    connectionName: "rate-limiter",
  });
  redis.defineCommand("chatRateTake", { numberOfKeys: 1, lua: TAKE_LUA });
  const commands = redis as unknown as RateCommands;

  let down = false;
  function failed(error: unknown): void {
    if (down) return;
    down = true;
    logger.warn({ err: error }, "Redis unreachable: rate limits are enforced per gateway until it is back");
  }
  redis.on("error", failed);

  return {
    async take(key, cost = 1): Promise<RateDecision> {
      checkCost(limit, cost);
      try {
        const [allowed, retryAfterMs] = await commands.chatRateTake(keyPrefix + key, perMs, limit.burst, cost);
        if (down) {
          down = false;
          logger.warn({}, "Redis reachable again: rate limits are shared by the gateways again");
        }
        return { allowed: allowed === 1, retryAfterMs };
      } catch (error) {
        failed(error);
        return fallback.take(key, cost);
      }
    },
    async close() {
      await fallback.close();
      try {
        await redis.quit();
      } catch {
        // Unreachable: nothing of ours is left to flush.
      } finally {
        redis.disconnect();
      }
    },
  } satisfies RateLimiter;
}
export { prefetchingLimiter, type PrefetchOptions } from "./prefetch.js";
