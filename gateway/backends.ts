import { createMemoryBus } from "../backends/bus-memory/index.js";
import { createMemoryPresence } from "../backends/presence-memory/index.js";
import { createMemoryRateLimiter } from "../backends/rate-memory/index.js";
import { createMemorySessionRegistry } from "../backends/sessions-memory/index.js";
import { createSqliteStore } from "../backends/store-sqlite/index.js";
import { createLocalBlobStore, type LocalBlobStore } from "../backends/blob-local/index.js";
import { createSqlitePushStore } from "../backends/push-sqlite/index.js";
import { createWebhookSender } from "../backends/push-webhook/index.js";
import { createWebPushSender, type VapidKeys } from "../backends/push-webpush/index.js";
import type { LoginLimiters } from "../services/accounts/index.js";
import type { BlobStore, ChatStore, EventBus, PresenceRegistry, PushSender, PushStore, RateLimit, RateLimiter, SessionRegistry } from "../services/ports/index.js";
import type { GatewayConfig } from "./config.js";
import { resolveSecret, resolveVapidKeys } from "./generated-secrets.js";
import type { Logger } from "./logger.js";

/** Every engine the services run on, chosen by the configuration's URLs. */
export interface Backends {
  readonly store: ChatStore;
  readonly bus: EventBus;
  readonly presence: PresenceRegistry;
  readonly sessions: SessionRegistry;
  readonly sendLimiter: RateLimiter;
  readonly loginLimiters: LoginLimiters;
  readonly push: PushStore;
  readonly pushSenders: readonly PushSender[];
  readonly vapid: VapidKeys;
  readonly blobs: BlobStore;
  /** Set when the blob store is the local directory, whose URLs the gateway itself serves. */
  readonly localBlobs?: LocalBlobStore;
  close(): Promise<void>;
}

export interface BackendHooks {
  /** How clients reach this gateway; known only once it listens. */
  readonly publicUrl: () => string;
  /** Told of every request a cluster store sends to its engine (metrics). */
  readonly countStoreRequest?: (operation: string, paxos: boolean) => void;
}

/**
 * `cassandra://h1:9042,h2:9042/keyspace?replication_factor=3&dc=datacenter1&sequencer=log`.
 * `sequencer`: `log` (default with a nats:// bus: seqs by compare-and-set on a JetStream stream, no
 * Paxos round per message) or `paxos` (a conditional batch per batch of messages; no log needed).
 */
export function parseCassandraUrl(url: string) {
  const parsed = new URL(url.replace(/^cassandra:/, "http:"));
  const hosts = url.slice("cassandra://".length).split("/")[0]!;
  const keyspace = parsed.pathname.replace(/^\//, "") || "chat";
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(keyspace)) throw new Error(`"${keyspace}" is not a valid keyspace name (lower-case letters, digits, _)`);
  return {
    contactPoints: hosts.split(","),
    keyspace,
    localDataCenter: parsed.searchParams.get("dc") ?? "datacenter1",
    replication: { class: "SimpleStrategy", replication_factor: Number(parsed.searchParams.get("replication_factor") ?? 1) },
    sequencer: sequencerOf(parsed.searchParams.get("sequencer")),
  };
}

function sequencerOf(value: string | null): "log" | "paxos" | undefined {
  if (value === null) return undefined;
  if (value === "log" || value === "paxos") return value;
  throw new Error(`sequencer=${value} in the store URL is not one of: log, paxos`);
}

async function openStore(config: GatewayConfig, logger: Logger, hooks: BackendHooks): Promise<ChatStore> {
  const url = config.storeUrl;
  if (url.startsWith("sqlite:")) {
    return createSqliteStore({
      path: url.slice("sqlite:".length),
      onAppendThreadStopped: (error) =>
        logger.error({ err: error }, "the SQLite append thread stopped; sends now commit on the main thread (slower). Restart the gateway to get it back"),
    });
  }
  if (url.startsWith("cassandra://")) {
    const { createCassandraStore } = await import("../backends/store-cassandra/index.js");
    const { sequencer, ...cassandra } = parseCassandraUrl(url);
    const useLog = sequencer === "log" || (sequencer === undefined && config.busUrl.startsWith("nats://"));
    if (useLog && !config.busUrl.startsWith("nats://")) throw new Error("sequencer=log needs a nats:// bus (CHAT_BUS): the log is a JetStream stream on it");
    const log = useLog ? await (await import("../backends/log-jetstream/index.js")).createJetStreamLog({ natsUrl: config.busUrl }) : undefined;
    try {
      return await createCassandraStore({
        ...cassandra,
        ...(log ? { log } : {}),
        ...(hooks.countStoreRequest ? { countRequest: hooks.countStoreRequest } : {}),
      });
    } catch (error) {
      await log?.close();
      throw error;
    }
  }
  throw new Error(`no store engine for "${url}"; use sqlite:<path> or cassandra://host:port/keyspace`);
}

async function openRedisParts(config: GatewayConfig, redisUrl: string, logger: Logger) {
  const [{ createRedisSessionRegistry }, { createRedisPresence }, { createRedisRateLimiter, prefetchingLimiter }] = await Promise.all([
    import("../backends/sessions-redis/index.js"),
    import("../backends/presence-redis/index.js"),
    import("../backends/rate-redis/index.js"),
  ]);
  return {
    sessions: createRedisSessionRegistry({ redisUrl, gatewayId: config.gatewayId, logger }),
    presence: createRedisPresence({ redisUrl, timeoutMs: config.presenceTimeoutMs, logger }),
    // A fast sender's tokens are drawn from the shared bucket a few at a time: no Redis round trip
    // for most of its sends, and never more sends than the shared bucket grants.
    sendLimiter: prefetchingLimiter(createRedisRateLimiter({ redisUrl, limit: sendLimit(config), keyPrefix: "chat:rate:", logger }), {
      maxChunk: 8,
      holdMs: 1_000,
      burst: sendLimit(config).burst,
    }),
    loginLimiters: mapLoginLimits(config, (limit, name) => createRedisRateLimiter({ redisUrl, limit, keyPrefix: `chat:login:${name}:`, logger })),
  };
}

function openMemoryParts(config: GatewayConfig) {
  return {
    sessions: createMemorySessionRegistry({ gatewayId: config.gatewayId }),
    presence: createMemoryPresence({ timeoutMs: config.presenceTimeoutMs }),
    sendLimiter: createMemoryRateLimiter(sendLimit(config)),
    loginLimiters: mapLoginLimits(config, (limit) => createMemoryRateLimiter(limit)),
  };
}

/** The three login buckets of services/accounts/login-throttle.ts, as multiples of one setting pair. */
function mapLoginLimits(config: GatewayConfig, open: (limit: RateLimit, name: keyof LoginLimiters) => RateLimiter): LoginLimiters {
  const limit = (times: number) => ({ ratePerSecond: (times * config.loginPerMinute) / 60, burst: times * config.loginBurst });
  return {
    accountAddress: open(limit(1), "accountAddress"),
    address: open(limit(10), "address"),
    account: open(limit(5), "account"),
  };
}

const sendLimit = (config: GatewayConfig) => ({ ratePerSecond: config.sendRatePerSecond, burst: config.sendBurst });

async function openBus(config: GatewayConfig, sessions: SessionRegistry, logger: Logger): Promise<EventBus> {
  if (config.busUrl === "memory:") return createMemoryBus();
  const { createNatsBus } = await import("../backends/bus-nats/index.js");
  return createNatsBus({ natsUrl: config.busUrl, gatewayId: config.gatewayId, sessions, logger });
}

async function openBlobs(config: GatewayConfig, hooks: BackendHooks): Promise<{ blobs: BlobStore; localBlobs?: LocalBlobStore }> {
  const url = config.blobStoreUrl;
  if (url.startsWith("file:")) {
    const local = createLocalBlobStore({
      dir: url.slice("file:".length),
      secret: resolveSecret(config.blobUrlSecret, config.dataDir, "blob-url-secret"),
      baseUrl: hooks.publicUrl,
    });
    return { blobs: local, localBlobs: local };
  }
  const { createS3BlobStore, parseS3Url } = await import("../backends/blob-s3/index.js");
  const s3 = createS3BlobStore({
    ...parseS3Url(url),
    credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey },
  });
  await s3.ensureBucket();
  return { blobs: s3 };
}

/** Push targets and jobs stay in a SQLite file of this gateway's data directory, whatever the store. */
function openPush(config: GatewayConfig) {
  const vapid = resolveVapidKeys(config.vapidPublicKey, config.vapidPrivateKey, config.dataDir);
  const pushSenders: PushSender[] = [
    createWebhookSender({ secret: resolveSecret(config.pushWebhookSecret, config.dataDir, "push-webhook-secret"), timeoutMs: config.pushTimeoutMs }),
    createWebPushSender({ vapid, subject: config.vapidSubject, ttlSeconds: 86_400, timeoutMs: config.pushTimeoutMs }),
  ];
  return { push: createSqlitePushStore({ path: `${config.dataDir}/push.db` }), pushSenders, vapid };
}

/**
 * The one place that names concrete engines; services only see the ports. Cluster engines are loaded
 * only when configured, so the embedded default never loads their drivers.
 */
export async function openBackends(config: GatewayConfig, logger: Logger, hooks: BackendHooks): Promise<Backends> {
  const { sessions, presence, sendLimiter, loginLimiters } = config.presenceUrl.startsWith("redis://")
    ? await openRedisParts(config, config.presenceUrl, logger)
    : openMemoryParts(config);
  const bus = await openBus(config, sessions, logger);
  const store = await openStore(config, logger, hooks);
  const { blobs, localBlobs } = await openBlobs(config, hooks);
  const { push, pushSenders, vapid } = openPush(config);
  return {
    store,
    bus,
    presence,
    sessions,
    sendLimiter,
    loginLimiters,
    push,
    pushSenders,
    vapid,
    blobs,
    localBlobs,
    async close() {
      await bus.close();
      await presence.close();
      await sessions.close();
      await sendLimiter.close();
      await Promise.all(Object.values(loginLimiters).map((limiter) => limiter.close()));
      await store.close();
      await push.close();
      await blobs.close();
    },
  };
}
