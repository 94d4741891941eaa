import { Redis } from "ioredis";
import type { PresenceRegistry, PresenceState, PresenceWatch } from "../../services/ports/index.js";
import { createPresenceWatchers } from "../presence-watchers/index.js";

/** What this engine logs: an outage and its end (pino's `warn(obj, msg)` fits). */
export interface PresenceLogger {
  warn(details: object, message: string): void;
}

export interface RedisPresenceOptions {
  readonly redisUrl: string;
  /** How long a device counts as alive after its last heartbeat. */
  readonly timeoutMs: number;
  /**
   * How often this registry looks for expired devices; default min(timeoutMs / 4, 1000). Every gateway
   * sweeps, each expiry is handled by exactly one of them, so a vanished device is reported offline
   * within timeoutMs + sweepIntervalMs.
   */
  readonly sweepIntervalMs?: number;
  /** Prefix of every key and channel, so several deployments can share one Redis. */
  readonly keyPrefix?: string;
  /** A Redis call that takes longer fails (heartbeats and disconnects then fail soft, see below). */
  readonly commandTimeoutMs?: number;
  readonly logger?: PresenceLogger;
}

const DEFAULT_KEY_PREFIX = "chat:presence:";
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
/** The sweep never waits longer than this, so a long timeout does not also mean a late offline. */
const MAX_SWEEP_INTERVAL_MS = 1000;
/** Expired devices handled per script call: bounds how long one call holds Redis. */
const SWEEP_BATCH = 500;
/** Users per lookup script call, for the same reason. */
const LOOKUP_CHUNK = 500;

/*
 * Keys (P = keyPrefix):
 *   P deadlines       ZSET  "<len(userId)>:<userId><deviceId>" → deadline (ms): what the sweepers pop
 *   P dev:<userId>    ZSET  deviceId → deadline: the user's devices; the user is online while one is live
 *   P seen            HASH  userId → lastSeen (ms), kept after the user goes offline (one field per
 *                           user ever seen, bounded by the accounts, like the in-process engine)
 *   P ch:<userId>     pub/sub channel of the user's transitions: "<1|0>|<lastSeen ms>|<at µs>|<userId>"
 * The deadline member is length-prefixed so any user and device id splits back exactly.
 * All times are Redis' (TIME), so gateways with skewed clocks agree; `at` orders transitions against
 * lookups (see resync below).
 */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local deadlines = KEYS[1]
local seen = KEYS[2]
local prefix = ARGV[1]
local function devicesKey(user) return prefix .. 'dev:' .. user end
local function deadlineMember(user, device) return string.len(user) .. ':' .. user .. device end
local function notify(user, online, lastSeen)
  local flag = '0'
  if online then flag = '1' end
  redis.call('PUBLISH', prefix .. 'ch:' .. user, flag .. '|' .. string.format('%.0f', lastSeen) .. '|' .. at .. '|' .. user)
end
-- Drops the user's devices whose deadline has passed; if that leaves none, the user went offline at
-- their last heartbeat (or disconnect of another device).
local function expireUser(user)
  local key = devicesKey(user)
  local stale = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #stale == 0 then return end
  for _, device in ipairs(stale) do redis.call('ZREM', deadlines, deadlineMember(user, device)) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('EXISTS', key) == 0 then notify(user, false, tonumber(redis.call('HGET', seen, user)) or now) end
end
`;

/**
 * KEYS deadlines, seen, dev:<user>; ARGV prefix, user, device, timeoutMs. An expired device of the user
 * is dealt with first, so a heartbeat arriving after its deadline (before a sweeper got there) is
 * reported as offline then online, not hidden.
 */
const HEARTBEAT_LUA = `${PRELUDE}
local user, device = ARGV[2], ARGV[3]
expireUser(user)
local wasOnline = redis.call('EXISTS', KEYS[3]) == 1
local deadline = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], deadline, device)
redis.call('ZADD', deadlines, deadline, deadlineMember(user, device))
redis.call('HSET', seen, user, now)
if not wasOnline then notify(user, true, now) end
return 1`;

/** KEYS deadlines, seen, dev:<user>; ARGV prefix, user, device. An unknown or expired device changes nothing. */
const DISCONNECT_LUA = `${PRELUDE}
local user, device = ARGV[2], ARGV[3]
expireUser(user)
if not redis.call('ZSCORE', KEYS[3], device) then return 0 end
redis.call('ZREM', KEYS[3], device)
redis.call('ZREM', deadlines, deadlineMember(user, device))
redis.call('HSET', seen, user, now)
if redis.call('EXISTS', KEYS[3]) == 0 then notify(user, false, now) end
return 1`;

/**
 * KEYS deadlines, seen; ARGV prefix, batch. Pops expired deadlines inside one script, so of all the
 * gateways sweeping at once exactly one handles (and reports) each expiry. Returns how many it popped.
 */
const SWEEP_LUA = `${PRELUDE}
local expired = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(expired) do
  local colon = string.find(member, ':', 1, true)
  local user = string.sub(member, colon + 1, colon + tonumber(string.sub(member, 1, colon - 1)))
  expireUser(user)
  redis.call('ZREM', deadlines, member)
end
return #expired`;

/** KEYS seen, dev:<user>...; ARGV users. Returns {at, live device count, lastSeen or '' per user}. */
const LOOKUP_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local result = { string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])) }
for i, user in ipairs(ARGV) do
  result[#result + 1] = redis.call('ZCOUNT', KEYS[i + 1], '(' .. string.format('%.0f', now), '+inf')
  result[#result + 1] = redis.call('HGET', KEYS[1], user) or ''
end
return result`;

interface PresenceCommands {
  chatPresenceHeartbeat(deadlines: string, seen: string, devices: string, prefix: string, userId: string, deviceId: string, timeoutMs: number): Promise<number>;
  chatPresenceDisconnect(deadlines: string, seen: string, devices: string, prefix: string, userId: string, deviceId: string): Promise<number>;
  chatPresenceSweep(deadlines: string, seen: string, prefix: string, batch: number): Promise<number>;
  chatPresenceLookup(keyCount: number, ...keysThenUsers: string[]): Promise<(string | number)[]>;
}

/** The last state this registry passed on for a watched user, and Redis' time of it. */
interface Known {
  online: boolean;
  at: number;
  lastSeen?: number;
}

/**
 * The presence registry of a cluster, in Redis.
 *
 * - Heartbeat, disconnect and expiry are Lua scripts, so the transitions (first live device: online;
 *   last one gone: offline) are decided atomically however many gateways write at once, and each is
 *   published once on the user's pub/sub channel. Every gateway sweeps expired devices.
 * - Each registry holds one subscriber connection and subscribes to a user's channel while at least one
 *   of its watches watches that user (reference counted), so a watch only ever sees its users' changes.
 *   A heartbeat or disconnect through this registry waits for subscriptions still being set up, so a
 *   watch opened before it sees its change.
 * - Pub/sub drops what is published while the subscriber is disconnected, and a Redis restart without
 *   persistence drops every state. So after the subscriber reconnects, the registry subscribes to its
 *   watched users' channels again (itself: ioredis would skip a SUBSCRIBE that failed during the
 *   outage), and re-reads its watched users once timeoutMs + sweepIntervalMs later (when live devices have
 *   heartbeated again) and reports each user whose state differs from the last one it passed on.
 *   Changes that only repeat the last state passed on (a heartbeat re-creating a wiped user) are
 *   dropped, and a change older (by Redis time) than what a re-read showed is ignored.
 * - Heartbeats and disconnects fail soft: when Redis is unreachable they are logged and dropped (the
 *   next heartbeat retries; a device session must not fail because presence is down). lookup rejects.
 *
 * Standalone Redis (or Sentinel): the sweep script reaches keys by name, which Redis Cluster forbids.
 */
export function createRedisPresence(options: RedisPresenceOptions): PresenceRegistry {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const sweepIntervalMs = options.sweepIntervalMs ?? Math.min(timeoutMs / 4, MAX_SWEEP_INTERVAL_MS);
  if (!(sweepIntervalMs > 0) || !Number.isFinite(sweepIntervalMs)) {
    throw new RangeError(`sweepIntervalMs must be a positive number, got ${sweepIntervalMs}`);
  }
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const logger = options.logger ?? { warn: (details, message) => console.warn(`[presence-redis] ${message}`, details) };
  const deadlinesKey = `${prefix}deadlines`;
  const seenKey = `${prefix}seen`;
  const devicesKey = (userId: string) => `${prefix}dev:${userId}`;
  const channelOf = (userId: string) => `${prefix}ch:${userId}`;

  const connection = {
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
  };
  const redis = new Redis(options.redisUrl, { ...connection, connectionName: "presence" });
  // ioredis would only resubscribe channels whose SUBSCRIBE had succeeded; one issued during an outage
  // may have been dropped with the offline queue. The registry resubscribes every watched user itself.
  const subscriber = new Redis(options.redisUrl, { ...connection, connectionName: "presence-watch", autoResubscribe: false });
  redis.defineCommand("chatPresenceHeartbeat", { numberOfKeys: 3, lua: HEARTBEAT_LUA });
  redis.defineCommand("chatPresenceDisconnect", { numberOfKeys: 3, lua: DISCONNECT_LUA });
  redis.defineCommand("chatPresenceSweep", { numberOfKeys: 2, lua: SWEEP_LUA });
  redis.defineCommand("chatPresenceLookup", { lua: LOOKUP_LUA });
  const commands = redis as unknown as PresenceCommands;

  // Redis channels follow the watchers: subscribed with a user's first watcher, left with the last.
  const watchers = createPresenceWatchers({ firstWatcher: (userId) => listen(userId), lastWatcher: (userId) => unlisten(userId) });
  const known = new Map<string, Known>();
  const subscribing = new Set<Promise<unknown>>();
  let closed = false;
  let down = false;

  function failed(error: unknown, what: string): void {
    if (down || closed) return;
    down = true;
    logger.warn({ err: error }, `Redis unreachable (${what}); presence changes are dropped until it is back`);
  }
  function succeeded(): void {
    if (!down) return;
    down = false;
    logger.warn({}, "Redis reachable again");
  }
  redis.on("error", (error: Error) => failed(error, "connection"));
  subscriber.on("error", (error: Error) => failed(error, "subscriber connection"));

  function apply(userId: string, online: boolean, lastSeen: number | undefined, at: number, isChange: boolean): void {
    const last = known.get(userId);
    if (last && at < last.at) return;
    if (last && last.online === online) {
      last.at = at;
      return;
    }
    known.set(userId, { online, at, lastSeen: lastSeen ?? last?.lastSeen });
    // A re-read state is only a change if there was a state to change from.
    if (!isChange && !last) return;
    if (!watchers.isWatched(userId)) return;
    const seenAt = lastSeen ?? last?.lastSeen;
    const state: PresenceState = seenAt === undefined ? { userId, online } : { userId, online, lastSeen: new Date(seenAt) };
    watchers.notify(state);
  }

  subscriber.on("message", (_channel: string, message: string) => {
    const first = message.indexOf("|");
    const second = message.indexOf("|", first + 1);
    const third = message.indexOf("|", second + 1);
    const userId = message.slice(third + 1);
    if (!watchers.isWatched(userId)) return;
    apply(userId, message.slice(0, first) === "1", Number(message.slice(first + 1, second)), Number(message.slice(second + 1, third)), true);
  });

  let resyncTimer: NodeJS.Timeout | undefined;
  let subscriberReadyOnce = false;
  subscriber.on("ready", () => {
    if (subscriberReadyOnce && !closed) {
      const users = watchers.watchedUsers();
      for (let i = 0; i < users.length; i += LOOKUP_CHUNK) listen(...users.slice(i, i + LOOKUP_CHUNK));
      clearTimeout(resyncTimer);
      resyncTimer = setTimeout(() => void resync(), timeoutMs + sweepIntervalMs + 50);
      resyncTimer.unref();
    }
    subscriberReadyOnce = true;
  });

  async function resync(): Promise<void> {
    const users = watchers.watchedUsers();
    try {
      for (let i = 0; i < users.length && !closed; i += LOOKUP_CHUNK) {
        const chunk = users.slice(i, i + LOOKUP_CHUNK);
        const { at, states } = await read(chunk);
        chunk.forEach((userId, index) => {
          if (watchers.isWatched(userId)) apply(userId, states[index]!.online, states[index]!.lastSeen, at, false);
        });
      }
    } catch (error) {
      failed(error, "resync");
    }
  }

  async function read(userIds: readonly string[]): Promise<{ at: number; states: { online: boolean; lastSeen?: number }[] }> {
    const reply = await commands.chatPresenceLookup(userIds.length + 1, seenKey, ...userIds.map(devicesKey), ...userIds);
    const states = userIds.map((_, index) => {
      const seen = reply[2 + index * 2];
      return { online: Number(reply[1 + index * 2]) > 0, lastSeen: seen === "" || seen == null ? undefined : Number(seen) };
    });
    return { at: Number(reply[0]), states };
  }

  let sweeping = false;
  async function sweep(): Promise<void> {
    if (sweeping || closed) return;
    sweeping = true;
    try {
      while ((await commands.chatPresenceSweep(deadlinesKey, seenKey, prefix, SWEEP_BATCH)) >= SWEEP_BATCH && !closed);
      succeeded();
    } catch (error) {
      failed(error, "sweep");
    } finally {
      sweeping = false;
    }
  }
  const sweeper = setInterval(() => void sweep(), sweepIntervalMs);
  // Presence alone must never keep a process alive.
  sweeper.unref();

  function listen(...userIds: string[]): void {
    const done = subscriber.subscribe(...userIds.map(channelOf)).catch((error: unknown) => failed(error, "subscribe"));
    subscribing.add(done);
    void done.finally(() => subscribing.delete(done));
  }

  function unlisten(userId: string): void {
    known.delete(userId);
    if (closed) return;
    subscriber.unsubscribe(channelOf(userId)).catch((error: unknown) => failed(error, "unsubscribe"));
  }

  async function write(what: string, run: () => Promise<number>): Promise<void> {
    if (closed) return;
    if (subscribing.size > 0) await Promise.allSettled([...subscribing]);
    try {
      await run();
      succeeded();
    } catch (error) {
      failed(error, what);
    }
  }

  return {
    heartbeat(userId, deviceId) {
      return write("heartbeat", () =>
        commands.chatPresenceHeartbeat(deadlinesKey, seenKey, devicesKey(userId), prefix, userId, deviceId, timeoutMs),
      );
    },

    disconnect(userId, deviceId) {
      return write("disconnect", () => commands.chatPresenceDisconnect(deadlinesKey, seenKey, devicesKey(userId), prefix, userId, deviceId));
    },

    async lookup(userIds) {
      const result: PresenceState[] = [];
      for (let i = 0; i < userIds.length; i += LOOKUP_CHUNK) {
        const chunk = userIds.slice(i, i + LOOKUP_CHUNK);
        const { states } = await read(chunk);
        chunk.forEach((userId, index) => {
          const { online, lastSeen } = states[index]!;
          result.push(lastSeen === undefined ? { userId, online } : { userId, online, lastSeen: new Date(lastSeen) });
        });
      }
      return result;
    },

    watch(userIds, watchOptions = {}): PresenceWatch {
      return watchers.watch(userIds, watchOptions);
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweeper);
      clearTimeout(resyncTimer);
      watchers.closeAll();
      known.clear();
      await Promise.all(
        [redis, subscriber].map(async (client) => {
          try {
            await client.quit();
          } catch {
            // Unreachable: nothing of ours is left to flush.
          } finally {
            client.disconnect();
          }
        }),
      );
    },
  } satisfies PresenceRegistry;
}
