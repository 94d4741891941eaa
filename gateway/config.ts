import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/**
 * Every setting, read from the environment (over an optional JSON file) and validated once at start. A bad value stops the process
 * with a message naming the setting, the value given and what is accepted.
 */
export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** `sqlite:<path>` (embedded default) or `cassandra://host:port[,host:port]/keyspace[?replication_factor=N&dc=NAME]`. */
  readonly storeUrl: string;
  /** `memory:` (embedded default) or `nats://host:port`. */
  readonly busUrl: string;
  /** `memory:` (embedded default) or `redis://host:port`: presence, the session registry and rate limits. */
  readonly presenceUrl: string;
  /** This gateway's name in the session registry and its bus subject; stable across restarts. */
  readonly gatewayId: string;
  readonly sendRatePerSecond: number;
  readonly sendBurst: number;
  readonly graphqlIntrospection: boolean;
  readonly graphqlGraphiql: boolean;
  readonly graphqlMaxDepth: number;
  readonly graphqlMaxCost: number;
  /** off: any document; register: also persisted ones, registered by hash (APQ); only: the file's documents alone. */
  readonly graphqlTrustedDocuments: "off" | "register" | "only";
  /** A JSON object of document id to document text (graphql-codegen's persisted-documents.json); empty: none. */
  readonly graphqlTrustedDocumentsFile: string;
  /** Empty: generated once and kept in `<dataDir>/token-secret`. */
  readonly tokenSecret: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly passwordCost: number;
  readonly passwordHashThreads: number;
  readonly passwordHashQueue: number;
  readonly loginBurst: number;
  readonly loginPerMinute: number;
  /** Take the client address from the last `X-Forwarded-For` entry (behind a reverse proxy). */
  readonly trustForwardedFor: boolean;
  /** Browser origins (scheme://host[:port]) allowed besides the gateway's own. */
  readonly allowedOrigins: readonly string[];
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly logLevel: string;
  readonly helloTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly reconcileIntervalMs: number;
  readonly outboundLimit: number;
  readonly slowConsumerResetMs: number;
  readonly idleConnectionTimeoutMs: number;
  /** `native`: the device stream's binary Connect/gRPC/gRPC-web calls are served by gateway/native-stream.ts; `router`: by the stock Connect router. */
  readonly streamHandler: "native" | "router";
  readonly maxRequestBytes: number;
  readonly drainTimeoutMs: number;
  readonly groupMaxMembers: number;
  readonly presenceTimeoutMs: number;
  readonly typingThrottleMs: number;
  readonly typingTtlMs: number;
  /** Serve Prometheus metrics on `/metrics`. */
  readonly metrics: boolean;
  /** Empty: generated once and kept in `<dataDir>/push-webhook-secret`. */
  readonly pushWebhookSecret: string;
  readonly pushRetryMaxAttempts: number;
  readonly pushRetryInitialMs: number;
  readonly pushRetryMaxMs: number;
  readonly pushTimeoutMs: number;
  readonly pushPollMs: number;
  /** Both empty: generated once and kept in `<dataDir>/vapid-keys.json`. */
  readonly vapidPublicKey: string;
  readonly vapidPrivateKey: string;
  readonly vapidSubject: string;
  /** `file:<dir>` (embedded default) or `s3://host:port/bucket?region=...&tls=on|off`. */
  readonly blobStoreUrl: string;
  readonly s3AccessKeyId: string;
  readonly s3SecretAccessKey: string;
  /** Empty: generated once and kept in `<dataDir>/blob-url-secret`. */
  readonly blobUrlSecret: string;
  /** Base of the local blob store's URLs; empty: the gateway's own listening URL. */
  readonly publicUrl: string;
  readonly uploadMaxBytes: number;
  readonly uploadUrlTtlMs: number;
  readonly downloadUrlTtlMs: number;
  readonly uploadContentTypes: readonly string[];
}

interface Setting<K extends keyof GatewayConfig> {
  readonly key: K;
  readonly env: string;
  readonly help: string;
  readonly fallback: (partial: Partial<GatewayConfig>) => GatewayConfig[K];
  readonly parse: (raw: string) => GatewayConfig[K] | undefined;
  readonly accepted: string;
}

const text = (raw: string) => raw;
const integer = (min: number, max: number) => (raw: string) => {
  if (!/^\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return value >= min && value <= max ? value : undefined;
};
const flag = (raw: string) => (/^(1|true|on|yes)$/i.test(raw) ? true : /^(0|false|off|no)$/i.test(raw) ? false : undefined);
const secret = (raw: string) => (raw === "" || raw.length >= 32 ? raw : undefined);
const httpUrl = (raw: string) => {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? raw.replace(/\/+$/, "") : undefined;
  } catch {
    return undefined;
  }
};
const contentTypes = (raw: string) => {
  const list = raw.split(",").map((type) => type.trim().toLowerCase()).filter(Boolean);
  return list.length > 0 && list.every((type) => /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/.test(type)) ? list : undefined;
};
const origins = (raw: string) => {
  const list = raw.split(",").map((origin) => origin.trim()).filter(Boolean);
  const parsed = list.map((origin) => {
    if (origin === "*") return origin;
    try {
      const url = new URL(origin);
      return (url.protocol === "http:" || url.protocol === "https:") && url.origin === origin.replace(/\/+$/, "") ? url.origin : undefined;
    } catch {
      return undefined;
    }
  });
  return parsed.every((origin) => origin !== undefined) ? (parsed as string[]) : undefined;
};
const oneOf = <T extends string>(...values: T[]) => (raw: string) => ((values as string[]).includes(raw) ? (raw as T) : undefined);

type AnySetting = { [K in keyof GatewayConfig]: Setting<K> }[keyof GatewayConfig];

export const SETTINGS: readonly AnySetting[] = [
  { key: "host", env: "CHAT_HOST", help: "address to listen on", fallback: () => "127.0.0.1", parse: text, accepted: "an IP address or host name" },
  { key: "port", env: "CHAT_PORT", help: "port for Connect, gRPC, gRPC-web, HTTP/1.1 and health", fallback: () => 8080, parse: integer(0, 65535), accepted: "an integer 0-65535 (0 picks a free port)" },
  { key: "dataDir", env: "CHAT_DATA_DIR", help: "directory of the embedded store and generated secrets", fallback: () => resolve("data"), parse: (raw) => resolve(raw), accepted: "a directory path" },
  { key: "storeUrl", env: "CHAT_STORE", help: "message/account store", fallback: (c) => `sqlite:${resolve(c.dataDir ?? "data", "chat.db")}`, parse: (raw) => (raw.startsWith("sqlite:") || raw.startsWith("cassandra://") ? raw : undefined), accepted: "sqlite:<file path> or cassandra://host:port/keyspace" },
  { key: "busUrl", env: "CHAT_BUS", help: "event bus between gateways", fallback: () => "memory:", parse: (raw) => (raw === "memory:" || raw.startsWith("nats://") ? raw : undefined), accepted: "memory: or nats://host:port" },
  { key: "presenceUrl", env: "CHAT_PRESENCE", help: "presence, session registry and rate limits", fallback: () => "memory:", parse: (raw) => (raw === "memory:" || raw.startsWith("redis://") ? raw : undefined), accepted: "memory: or redis://host:port" },
  { key: "gatewayId", env: "CHAT_GATEWAY_ID", help: "this gateway's stable name in a cluster", fallback: () => "gw1", parse: (raw) => (/^[A-Za-z0-9_-]{1,64}$/.test(raw) ? raw : undefined), accepted: "1-64 characters of A-Z a-z 0-9 _ -" },
  { key: "sendRatePerSecond", env: "CHAT_SEND_RATE", help: "messages per second one user may send, sustained", fallback: () => 50, parse: integer(1, 1_000_000), accepted: "an integer 1-1000000" },
  { key: "sendBurst", env: "CHAT_SEND_BURST", help: "messages one user may send at once above the rate", fallback: () => 200, parse: integer(1, 1_000_000), accepted: "an integer 1-1000000" },
  { key: "tokenSecret", env: "CHAT_TOKEN_SECRET", help: "HMAC key for access tokens (at least 32 characters); empty: generated and kept in the data directory", fallback: () => "", parse: (raw) => (raw === "" || raw.length >= 32 ? raw : undefined), accepted: "empty, or at least 32 characters" },
  { key: "accessTokenTtlSeconds", env: "CHAT_ACCESS_TOKEN_TTL_SECONDS", help: "lifetime of an access token", fallback: () => 900, parse: integer(1, 86_400), accepted: "an integer 1-86400" },
  { key: "refreshTokenTtlSeconds", env: "CHAT_REFRESH_TOKEN_TTL_SECONDS", help: "lifetime of a refresh token", fallback: () => 30 * 86_400, parse: integer(60, 365 * 86_400), accepted: "an integer 60-31536000" },
  { key: "passwordCost", env: "CHAT_PASSWORD_COST", help: "log2 of scrypt's N for new password hashes", fallback: () => 15, parse: integer(10, 20), accepted: "an integer 10-20 (15 is about 50 ms)" },
  { key: "passwordHashThreads", env: "CHAT_PASSWORD_HASH_THREADS", help: "threads that hash passwords (their own, at low priority, never libuv's pool)", fallback: () => 1, parse: integer(1, 64), accepted: "an integer 1-64" },
  { key: "passwordHashQueue", env: "CHAT_PASSWORD_HASH_QUEUE", help: "logins and sign-ups that may wait for a hashing thread; past it they get UNAVAILABLE (retryable)", fallback: () => 1024, parse: integer(0, 1_000_000), accepted: "an integer 0-1000000" },
  { key: "loginBurst", env: "CHAT_LOGIN_BURST", help: "login attempts one account may make from one client address before it is slowed down (10x per address, 5x per account from all addresses)", fallback: () => 10, parse: integer(1, 100_000), accepted: "an integer 1-100000" },
  { key: "loginPerMinute", env: "CHAT_LOGIN_PER_MINUTE", help: "login attempts per minute, sustained, for one account from one address (same multiples as CHAT_LOGIN_BURST)", fallback: () => 6, parse: integer(1, 1_000_000), accepted: "an integer 1-1000000" },
  { key: "trustForwardedFor", env: "CHAT_TRUST_FORWARDED_FOR", help: "take the client address from the last X-Forwarded-For entry (only behind a reverse proxy that sets it)", fallback: () => false, parse: flag, accepted: "on/off (also true/false, 1/0, yes/no)" },
  { key: "allowedOrigins", env: "CHAT_ALLOWED_ORIGINS", help: "browser origins that may call GraphQL (CORS, WebSocket) besides the gateway's own; * allows any without credentials", fallback: () => [], parse: origins, accepted: "a comma-separated list of scheme://host[:port], or *" },
  { key: "tlsCertFile", env: "CHAT_TLS_CERT", help: "PEM certificate; with CHAT_TLS_KEY serves TLS (h2 and HTTP/1.1) instead of cleartext", fallback: () => "", parse: text, accepted: "a file path" },
  { key: "tlsKeyFile", env: "CHAT_TLS_KEY", help: "PEM private key for CHAT_TLS_CERT", fallback: () => "", parse: text, accepted: "a file path" },
  { key: "logLevel", env: "CHAT_LOG_LEVEL", help: "log level", fallback: () => "info", parse: oneOf("trace", "debug", "info", "warn", "error", "fatal", "silent"), accepted: "trace, debug, info, warn, error, fatal or silent" },
  { key: "helloTimeoutMs", env: "CHAT_HELLO_TIMEOUT_MS", help: "time a device stream has to send hello", fallback: () => 10_000, parse: integer(100, 600_000), accepted: "an integer 100-600000" },
  { key: "heartbeatIntervalMs", env: "CHAT_HEARTBEAT_INTERVAL_MS", help: "heartbeat interval asked of clients", fallback: () => 15_000, parse: integer(100, 600_000), accepted: "an integer 100-600000" },
  { key: "reconcileIntervalMs", env: "CHAT_RECONCILE_INTERVAL_MS", help: "at a heartbeat this long after the last check, a device stream sends what the store has beyond what it delivered", fallback: () => 30_000, parse: integer(100, 3_600_000), accepted: "an integer 100-3600000 (ms)" },
  { key: "outboundLimit", env: "CHAT_OUTBOUND_LIMIT", help: "frames that may wait for one slow device before its stream is ended", fallback: () => 10_000, parse: integer(10, 1_000_000), accepted: "an integer 10-1000000" },
  { key: "slowConsumerResetMs", env: "CHAT_SLOW_CONSUMER_RESET_MS", help: "how long a device past the outbound limit has to read the end of its stream before the stream is reset", fallback: () => 5_000, parse: integer(100, 3_600_000), accepted: "an integer 100-3600000 (ms)" },
  { key: "idleConnectionTimeoutMs", env: "CHAT_IDLE_CONNECTION_TIMEOUT_MS", help: "an HTTP/2 connection with no open stream and no traffic for this long is closed", fallback: () => 60_000, parse: integer(100, 3_600_000), accepted: "an integer 100-3600000 (ms)" },
  { key: "streamHandler", env: "CHAT_STREAM_HANDLER", help: "what serves the device stream's binary calls: the hand-written HTTP/2 handler or the stock Connect router", fallback: () => "native", parse: oneOf("native", "router"), accepted: "native or router" },
  { key: "maxRequestBytes", env: "CHAT_MAX_REQUEST_BYTES", help: "largest request message accepted", fallback: () => 1024 * 1024, parse: integer(1024, 64 * 1024 * 1024), accepted: "an integer 1024-67108864" },
  { key: "drainTimeoutMs", env: "CHAT_DRAIN_TIMEOUT_MS", help: "how long a stopping gateway waits for clients to leave", fallback: () => 5_000, parse: integer(0, 600_000), accepted: "an integer 0-600000" },
  { key: "groupMaxMembers", env: "CHAT_GROUP_MAX_MEMBERS", help: "members per group, creator included", fallback: () => 100, parse: integer(2, 100_000), accepted: "an integer 2-100000" },
  { key: "presenceTimeoutMs", env: "CHAT_PRESENCE_TIMEOUT_MS", help: "a user is offline when no device has sent a heartbeat for this long", fallback: () => 30_000, parse: integer(100, 3_600_000), accepted: "an integer 100-3600000" },
  { key: "typingThrottleMs", env: "CHAT_TYPING_THROTTLE_MS", help: "at most one typing indicator per user and conversation in this window", fallback: () => 2_000, parse: integer(0, 60_000), accepted: "an integer 0-60000" },
  { key: "typingTtlMs", env: "CHAT_TYPING_TTL_MS", help: "a typing indicator disappears after this long without a refresh", fallback: () => 6_000, parse: integer(100, 60_000), accepted: "an integer 100-60000" },
  { key: "metrics", env: "CHAT_METRICS", help: "serve Prometheus metrics on /metrics (same port)", fallback: () => true, parse: flag, accepted: "on/off (also true/false, 1/0, yes/no)" },
  { key: "graphqlIntrospection", env: "CHAT_GRAPHQL_INTROSPECTION", help: "answer GraphQL introspection queries (turn off in production if the schema is private)", fallback: () => true, parse: flag, accepted: "on/off (also true/false, 1/0, yes/no)" },
  { key: "graphqlGraphiql", env: "CHAT_GRAPHQL_GRAPHIQL", help: "serve GraphiQL on GET /graphql", fallback: (c) => c.graphqlIntrospection ?? true, parse: flag, accepted: "on/off (also true/false, 1/0, yes/no); default: as CHAT_GRAPHQL_INTROSPECTION" },
  { key: "graphqlMaxDepth", env: "CHAT_GRAPHQL_MAX_DEPTH", help: "deepest field nesting of a GraphQL operation", fallback: () => 10, parse: integer(2, 100), accepted: "an integer 2-100" },
  { key: "graphqlMaxCost", env: "CHAT_GRAPHQL_MAX_COST", help: "highest estimated cost of a GraphQL operation (fields times list sizes)", fallback: () => 10_000, parse: integer(10, 10_000_000), accepted: "an integer 10-10000000" },
  { key: "graphqlTrustedDocuments", env: "CHAT_GRAPHQL_TRUSTED_DOCUMENTS", help: "which GraphQL documents run: off (any), register (any, and persisted ones by hash, registered on first use), only (the file's documents, by id)", fallback: () => "off", parse: oneOf("off", "register", "only"), accepted: "off, register or only" },
  { key: "graphqlTrustedDocumentsFile", env: "CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE", help: "JSON object of document id to GraphQL document (graphql-codegen's persisted-documents.json); required by only", fallback: () => "", parse: (raw) => (raw === "" ? "" : resolve(raw)), accepted: "a file path, or empty" },
  { key: "pushWebhookSecret", env: "CHAT_PUSH_WEBHOOK_SECRET", help: "HMAC key of the push webhook signature (at least 32 characters); empty: generated and kept in the data directory", fallback: () => "", parse: secret, accepted: "empty, or at least 32 characters" },
  { key: "pushRetryMaxAttempts", env: "CHAT_PUSH_RETRY_MAX_ATTEMPTS", help: "tries of one push, the first included, before it becomes a dead letter", fallback: () => 8, parse: integer(1, 100), accepted: "an integer 1-100" },
  { key: "pushRetryInitialMs", env: "CHAT_PUSH_RETRY_INITIAL_MS", help: "wait before a push's second try; doubled for each further one", fallback: () => 2_000, parse: integer(10, 3_600_000), accepted: "an integer 10-3600000" },
  { key: "pushRetryMaxMs", env: "CHAT_PUSH_RETRY_MAX_MS", help: "longest wait between two tries of a push", fallback: () => 600_000, parse: integer(10, 86_400_000), accepted: "an integer 10-86400000" },
  { key: "pushTimeoutMs", env: "CHAT_PUSH_TIMEOUT_MS", help: "a push try without an answer within this long fails (and is retried)", fallback: () => 10_000, parse: integer(100, 120_000), accepted: "an integer 100-120000" },
  { key: "pushPollMs", env: "CHAT_PUSH_POLL_MS", help: "how often stored push jobs are looked for (retries that came due, jobs left by a restart)", fallback: () => 1_000, parse: integer(10, 60_000), accepted: "an integer 10-60000" },
  { key: "vapidPublicKey", env: "CHAT_VAPID_PUBLIC_KEY", help: "VAPID public key for Web Push (base64url); empty with CHAT_VAPID_PRIVATE_KEY: generated and kept in the data directory", fallback: () => "", parse: text, accepted: "an uncompressed P-256 public key, base64url" },
  { key: "vapidPrivateKey", env: "CHAT_VAPID_PRIVATE_KEY", help: "VAPID private key for Web Push (base64url)", fallback: () => "", parse: text, accepted: "a P-256 private key, base64url" },
  { key: "vapidSubject", env: "CHAT_VAPID_SUBJECT", help: "contact the push services may use to reach the operator", fallback: () => "mailto:push@localhost", parse: (raw) => (/^(mailto:|https:\/\/)\S+$/.test(raw) ? raw : undefined), accepted: "a mailto: or https:// URL" },
  { key: "blobStoreUrl", env: "CHAT_BLOB_STORE", help: "where attachments are stored", fallback: (c) => `file:${resolve(c.dataDir ?? "data", "blobs")}`, parse: (raw) => (raw.startsWith("file:") ? `file:${resolve(raw.slice(5))}` : raw.startsWith("s3://") ? raw : undefined), accepted: "file:<directory> or s3://host:port/bucket[?region=us-east-1&tls=off]" },
  { key: "s3AccessKeyId", env: "CHAT_S3_ACCESS_KEY_ID", help: "access key id for an s3:// CHAT_BLOB_STORE", fallback: () => "", parse: text, accepted: "a string" },
  { key: "s3SecretAccessKey", env: "CHAT_S3_SECRET_ACCESS_KEY", help: "secret access key for an s3:// CHAT_BLOB_STORE", fallback: () => "", parse: text, accepted: "a string" },
  { key: "blobUrlSecret", env: "CHAT_BLOB_URL_SECRET", help: "HMAC key of the local blob store's signed URLs (at least 32 characters); empty: generated and kept in the data directory", fallback: () => "", parse: secret, accepted: "empty, or at least 32 characters" },
  { key: "publicUrl", env: "CHAT_PUBLIC_URL", help: "how clients reach this gateway (base of the local blob store's upload and download URLs); empty: its own listening URL", fallback: () => "", parse: (raw) => httpUrl(raw), accepted: "an http:// or https:// URL" },
  { key: "uploadMaxBytes", env: "CHAT_UPLOAD_MAX_BYTES", help: "largest attachment accepted", fallback: () => 25 * 1024 * 1024, parse: integer(1, 5 * 1024 ** 3), accepted: "an integer 1-5368709120" },
  { key: "uploadUrlTtlMs", env: "CHAT_UPLOAD_URL_TTL_MS", help: "lifetime of a pre-signed upload URL", fallback: () => 300_000, parse: integer(1_000, 7 * 86_400_000), accepted: "an integer 1000-604800000" },
  { key: "downloadUrlTtlMs", env: "CHAT_DOWNLOAD_URL_TTL_MS", help: "lifetime of a pre-signed download URL", fallback: () => 300_000, parse: integer(1_000, 7 * 86_400_000), accepted: "an integer 1000-604800000" },
  { key: "uploadContentTypes", env: "CHAT_UPLOAD_CONTENT_TYPES", help: "content types an attachment may have (type/* allows a whole family)", fallback: () => ["image/*", "video/*", "audio/*", "application/pdf", "text/plain"], parse: contentTypes, accepted: "a comma-separated list of type/subtype or type/*" },
];

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export const CONFIG_FILE_ENV = "CHAT_CONFIG_FILE";

/** `--config <path>` or `--config=<path>` among the arguments, else `CHAT_CONFIG_FILE`. */
export function configFilePath(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--config") {
      const path = argv[i + 1];
      if (!path) throw new ConfigError("--config needs a path: --config settings.json");
      return path;
    }
    if (arg.startsWith("--config=")) return arg.slice("--config=".length);
  }
  return env[CONFIG_FILE_ENV] || undefined;
}

/**
 * A JSON object of setting names (the environment variable names) to values. Unknown names are
 * refused rather than ignored, so a misspelt setting is not silently left at its default.
 */
export function readConfigFile(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`config file ${JSON.stringify(path)} could not be read: ${(error as Error).message}; expected a JSON object of setting names to values`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${JSON.stringify(path)} is not valid: expected a JSON object of setting names to values`);
  }
  const known = new Set(SETTINGS.map((setting) => setting.env));
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!known.has(name)) {
      throw new ConfigError(`config file ${JSON.stringify(path)}: ${name} is not a setting; accepted names are listed by --help`);
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new ConfigError(`config file ${JSON.stringify(path)}: ${name}=${JSON.stringify(value)} is not valid: expected a string, number or boolean`);
    }
    values[name] = String(value);
  }
  return values;
}

/** Settings from the environment, over those of the config file when one is given. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): GatewayConfig {
  const filePath = configFilePath(argv, env);
  const file = filePath ? readConfigFile(filePath) : {};
  const config: Partial<Record<keyof GatewayConfig, unknown>> = {};
  for (const setting of SETTINGS) {
    const fromEnv = env[setting.env];
    const raw = fromEnv === undefined || fromEnv === "" ? file[setting.env] : fromEnv;
    if (raw === undefined || raw === "") {
      config[setting.key] = setting.fallback(config as Partial<GatewayConfig>);
      continue;
    }
    const value = setting.parse(raw);
    if (value === undefined) {
      throw new ConfigError(`${setting.env}=${JSON.stringify(raw)} is not valid: expected ${setting.accepted}`);
    }
    config[setting.key] = value;
  }
  const result = config as unknown as GatewayConfig;
  if (Boolean(result.vapidPublicKey) !== Boolean(result.vapidPrivateKey)) {
    throw new ConfigError("CHAT_VAPID_PUBLIC_KEY and CHAT_VAPID_PRIVATE_KEY must be set together (or neither, to have a pair generated)");
  }
  if (result.blobStoreUrl.startsWith("s3://") && !(result.s3AccessKeyId && result.s3SecretAccessKey)) {
    throw new ConfigError("an s3:// CHAT_BLOB_STORE needs CHAT_S3_ACCESS_KEY_ID and CHAT_S3_SECRET_ACCESS_KEY");
  }
  if (Boolean(result.tlsCertFile) !== Boolean(result.tlsKeyFile)) {
    throw new ConfigError("CHAT_TLS_CERT and CHAT_TLS_KEY must be set together (or neither, for cleartext h2c)");
  }
  return result;
}

export function describeSettings(): string {
  const lines = [
    "Settings (environment variables; also accepted from a JSON file of the same names given by",
    `--config <path> or ${CONFIG_FILE_ENV}, with the environment taking precedence):`,
    "",
  ];
  for (const setting of SETTINGS) {
    const fallback = setting.fallback({});
    lines.push(`  ${setting.env.padEnd(32)} ${setting.help}`);
    lines.push(`  ${"".padEnd(32)} accepted: ${setting.accepted}; default: ${JSON.stringify(fallback)}`);
  }
  return lines.join("\n");
}
