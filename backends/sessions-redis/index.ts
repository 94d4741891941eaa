import { Redis } from "ioredis";
import type { DeviceLocation, SessionRegistry } from "../../services/ports/index.js";

/** What this engine logs: an outage and its end (pino's `warn(obj, msg)` fits). */
export interface SessionLogger {
  warn(details: object, message: string): void;
}

export interface RedisSessionRegistryOptions {
  readonly redisUrl: string;
  readonly gatewayId: string;
  /**
   * How long an entry outlives its last refresh; the registry refreshes its devices every ttlMs / 3,
   * so the devices of a gateway that died without a word drop out after at most ttlMs. Every gateway
   * of a cluster should use the same value.
   */
  readonly ttlMs?: number;
  /** Prefix of the per-user keys. */
  readonly keyPrefix?: string;
  /** A Redis call that takes longer fails (and, for writes, is retried by the next refresh). */
  readonly commandTimeoutMs?: number;
  readonly logger?: SessionLogger;
}

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_KEY_PREFIX = "chat:sessions:";
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/**
 * Reads and refreshes go in script calls of at most this many keys, so a huge group or gateway does not
 * block Redis at length; each call is one command with its own timeout.
 */
const CHUNK = 500;

// Scripts run on Redis' clock (TIME), so gateways whose clocks disagree still agree on what expired.
const NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/**
 * KEYS user keys, one per device (a key may repeat); ARGV[1] ttlMs, ARGV[i + 1] the member for KEYS[i].
 * Each key expires with its latest member, so idle users leave no key behind.
 */
const REGISTER_LUA = `${NOW_MS}
local expiry = now + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, expiry, ARGV[i + 1])
  local latest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, math.max(expiry, tonumber(latest[2])))
end
return #KEYS`;

/** KEYS user keys; returns, per key, its live members, trimming the expired ones on the way. */
const READ_LUA = `${NOW_MS}
local result = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  result[i] = redis.call('ZRANGE', key, 0, -1)
end
return result`;

interface SessionCommands {
  chatSessionRegister(keyCount: number, ...keysThenTtlThenMembers: (string | number)[]): Promise<number>;
  chatSessionRead(keyCount: number, ...keys: string[]): Promise<string[][]>;
}

/**
 * Which gateway holds which device, in Redis: per user a sorted set of `deviceId|gatewayId` scored by
 * the entry's expiry (Redis time, ms).
 *
 * - The registry refreshes every device it holds every ttlMs / 3 in one pipeline, so the entries of a
 *   gateway that died vanish within ttlMs; readers skip (and trim) expired members.
 * - Writes fail soft: register() remembers the device and resolves even if Redis is unreachable (the
 *   device's connection must not fail because of the registry); the next refresh writes it. A restarted,
 *   emptied Redis is refilled the same way, at once when the connection is ready again.
 * - Reads (gatewaysOf, devicesOf) reject when Redis is unreachable: the caller decides what to do.
 * - close() removes this gateway's entries, so a drained gateway stops receiving traffic at once.
 *
 * Standalone Redis (or Sentinel): scripts read keys by name, which a Redis Cluster would need hash tags for.
 */
export function createRedisSessionRegistry(options: RedisSessionRegistryOptions): SessionRegistry {
  const { gatewayId } = options;
  if (!gatewayId || gatewayId.includes("|")) throw new RangeError(`gatewayId must be non-empty and without "|", got "${gatewayId}"`);
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttlMs >= 30) || !Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be at least 30, got ${ttlMs}`);
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const logger = options.logger ?? { warn: (details, message) => console.warn(`[sessions-redis] ${message}`, details) };

  const redis = new Redis(options.redisUrl, {
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    connectionName: `sessions:${gatewayId}`,
  });
  redis.defineCommand("chatSessionRegister", { lua: REGISTER_LUA });
  redis.defineCommand("chatSessionRead", { lua: READ_LUA });
  const commands = redis as unknown as SessionCommands;

  // The devices this gateway holds, with how many open registrations each has: what the refresh keeps
  // alive. Bounded by the connected devices.
  const own = new Map<string, Map<string, number>>();
  let closed = false;
  let down = false;
  const keyOf = (userId: string) => `${keyPrefix}${userId}`;
  const memberOf = (deviceId: string) => `${deviceId}|${gatewayId}`;

  // One line when Redis goes away and one when it is back, not one per failed call.
  function failed(error: unknown, what: string): void {
    if (down || closed) return;
    down = true;
    logger.warn({ err: error, gatewayId }, `Redis unreachable (${what}); devices are kept and written again by the next refresh`);
  }
  function succeeded(): void {
    if (!down) return;
    down = false;
    logger.warn({ gatewayId }, "Redis reachable again");
  }
  redis.on("error", (error: Error) => failed(error, "connection"));

  async function writeAll(): Promise<void> {
    if (own.size === 0) return;
    const entries: [string, string][] = [];
    for (const [userId, devices] of own) for (const deviceId of devices.keys()) entries.push([keyOf(userId), memberOf(deviceId)]);
    try {
      await Promise.all(chunked(entries).map((chunk) => write(chunk)));
      succeeded();
    } catch (error) {
      failed(error, "refresh");
    }
  }
  let refreshing: Promise<void> | undefined;
  function refresh(): Promise<void> {
    // A refresh already under way writes the same entries; a second one would only double the load.
    // Cleared in a then-callback, which always runs after this assignment: a finally inside an async
    // function that returns at once would clear it before, and leave every later refresh skipped.
    refreshing ??= writeAll().finally(() => (refreshing = undefined));
    return refreshing;
  }
  const timer = setInterval(() => void refresh(), ttlMs / 3);
  // The registry alone must never keep a process alive.
  timer.unref();
  let readyOnce = false;
  redis.on("ready", () => {
    // After a reconnect Redis may have lost everything (a restart without persistence): write our
    // devices now rather than up to ttlMs / 3 later.
    if (readyOnce) void refresh();
    readyOnce = true;
  });

  function write(entries: readonly (readonly [key: string, member: string])[]): Promise<number> {
    return commands.chatSessionRegister(entries.length, ...entries.map(([key]) => key), ttlMs, ...entries.map(([, member]) => member));
  }

  async function read(userIds: readonly string[]): Promise<Map<string, string[]>> {
    const unique = [...new Set(userIds)];
    const members = new Map<string, string[]>();
    const chunks = chunked(unique);
    const replies = await Promise.all(chunks.map((chunk) => commands.chatSessionRead(chunk.length, ...chunk.map(keyOf))));
    replies.forEach((lists, chunkIndex) => {
      chunks[chunkIndex]!.forEach((userId, index) => {
        if (lists[index]?.length) members.set(userId, lists[index]!);
      });
    });
    return members;
  }

  function parse(member: string): DeviceLocation {
    // Gateway ids have no "|"; device ids might.
    const split = member.lastIndexOf("|");
    return { deviceId: member.slice(0, split), gatewayId: member.slice(split + 1) };
  }

  return {
    gatewayId,
    async register(userId, deviceId) {
      if (closed) return;
      let devices = own.get(userId);
      if (!devices) own.set(userId, (devices = new Map()));
      devices.set(deviceId, (devices.get(deviceId) ?? 0) + 1);
      try {
        await write([[keyOf(userId), memberOf(deviceId)]]);
        succeeded();
      } catch (error) {
        failed(error, "register");
      }
    },
    async unregister(userId, deviceId) {
      const devices = own.get(userId);
      const count = devices?.get(deviceId);
      if (!devices || !count) return;
      if (count > 1) return void devices.set(deviceId, count - 1);
      devices.delete(deviceId);
      if (devices.size === 0) own.delete(userId);
      try {
        await redis.zrem(keyOf(userId), memberOf(deviceId));
      } catch (error) {
        // No longer refreshed, the entry expires within ttlMs.
        failed(error, "unregister");
      }
    },
    async gatewaysOf(userIds) {
      const result = new Map<string, string[]>();
      for (const [userId, members] of await read(userIds)) {
        result.set(userId, [...new Set(members.map((member) => parse(member).gatewayId))]);
      }
      return result;
    },
    async devicesOf(userId) {
      return ((await read([userId])).get(userId) ?? []).map(parse);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      try {
        await Promise.all([...own].map(([userId, devices]) => redis.zrem(keyOf(userId), ...[...devices.keys()].map(memberOf))));
        await redis.quit();
      } catch {
        // Unreachable: the entries expire by themselves within ttlMs.
      } finally {
        own.clear();
        redis.disconnect();
      }
    },
  } satisfies SessionRegistry;
}

function chunked<T>(items: readonly T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) chunks.push(items.slice(i, i + CHUNK));
  return chunks;
}
