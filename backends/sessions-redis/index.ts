import { Redis, type ChainableCommander } from "ioredis";
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
/** gatewaysOf answers one script call per this many users, so a huge group does not block Redis at length. */
const READ_CHUNK = 500;

// Scripts run on Redis' clock (TIME), so gateways whose clocks disagree still agree on what expired.
const NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS[1] user key; ARGV member, ttlMs. The key expires with its latest member, so idle users leave no key behind. */
const REGISTER_LUA = `${NOW_MS}
local expiry = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.max(expiry, tonumber(latest[2])))
return 1`;

/** KEYS user keys; returns, per key, its live members, trimming the expired ones on the way. */
const READ_LUA = `${NOW_MS}
local result = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  result[i] = redis.call('ZRANGE', key, 0, -1)
end
return result`;

interface SessionCommands {
  chatSessionRegister(key: string, member: string, ttlMs: number): Promise<number>;
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
  redis.defineCommand("chatSessionRegister", { numberOfKeys: 1, lua: REGISTER_LUA });
  redis.defineCommand("chatSessionRead", { lua: READ_LUA });
  const commands = redis as unknown as SessionCommands;

  // The devices this gateway holds: what the refresh keeps alive. Bounded by the connected devices.
  const own = new Map<string, Set<string>>();
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

  let refreshing: Promise<void> | undefined;
  function refresh(): Promise<void> {
    // A refresh already under way writes the same entries; a second one would only double the load.
    refreshing ??= (async () => {
      try {
        if (own.size === 0) return;
        const pipeline = redis.pipeline() as ChainableCommander & { chatSessionRegister(key: string, member: string, ttlMs: number): unknown };
        for (const [userId, devices] of own) for (const deviceId of devices) pipeline.chatSessionRegister(keyOf(userId), memberOf(deviceId), ttlMs);
        const results = (await pipeline.exec()) ?? [];
        const error = results.find(([failure]) => failure)?.[0];
        if (error) throw error;
        succeeded();
      } catch (error) {
        failed(error, "refresh");
      } finally {
        refreshing = undefined;
      }
    })();
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

  async function read(userIds: readonly string[]): Promise<Map<string, string[]>> {
    const unique = [...new Set(userIds)];
    const members = new Map<string, string[]>();
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += READ_CHUNK) chunks.push(unique.slice(i, i + READ_CHUNK));
    const pipeline = redis.pipeline() as ChainableCommander & { chatSessionRead(keyCount: number, ...keys: string[]): unknown };
    for (const chunk of chunks) pipeline.chatSessionRead(chunk.length, ...chunk.map(keyOf));
    const results = chunks.length === 0 ? [] : ((await pipeline.exec()) ?? []);
    results.forEach(([error, reply], chunkIndex) => {
      if (error) throw error;
      const lists = reply as string[][];
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
      if (!devices) own.set(userId, (devices = new Set()));
      devices.add(deviceId);
      try {
        await commands.chatSessionRegister(keyOf(userId), memberOf(deviceId), ttlMs);
        succeeded();
      } catch (error) {
        failed(error, "register");
      }
    },
    async unregister(userId, deviceId) {
      const devices = own.get(userId);
      if (!devices?.delete(deviceId)) return;
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
        if (own.size > 0) {
          const pipeline = redis.pipeline();
          for (const [userId, devices] of own) pipeline.zrem(keyOf(userId), ...[...devices].map(memberOf));
          await pipeline.exec();
        }
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
