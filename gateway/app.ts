import { setMaxListeners } from "node:events";
import { fileURLToPath } from "node:url";
import type { ConnectRouter } from "@connectrpc/connect";
import { AccountsService } from "../gen/chat/v1/accounts_pb.js";
import { AttachmentsService } from "../gen/chat/v1/attachments_pb.js";
import { GroupsService } from "../gen/chat/v1/groups_pb.js";
import { MessagingService } from "../gen/chat/v1/messaging_pb.js";
import { PresenceService } from "../gen/chat/v1/presence_pb.js";
import { PushService } from "../gen/chat/v1/push_pb.js";
import { SyncService } from "../gen/chat/v1/sync_pb.js";
import { createAccessTokenSigner, createAccountsService, createLoginThrottle, createPasswordHasher } from "../services/accounts/index.js";
import { createAttachmentsService } from "../services/attachments/index.js";
import { createGroupsService } from "../services/groups/index.js";
import { createMessagingService, createTypingNotifier, type DeviceSessionOptions } from "../services/messaging/index.js";
import { createPresenceService } from "../services/presence/index.js";
import { createPushService, createPushWorker, withdrawOnRead, type PushWorkerEvent } from "../services/push/index.js";
import { createSyncService } from "../services/sync/index.js";
import { createGraphQLEndpoint } from "../graphql/endpoint.js";
import { graphqlSettingsFrom } from "../graphql/settings.js";
import { bearerAuthenticator } from "./authenticate.js";
import { openBackends, type Backends } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import { mapErrors, toConnectError } from "./connect-errors.js";
import { accountsHandlers } from "./handlers/accounts-handlers.js";
import { attachmentsHandlers } from "./handlers/attachments-handlers.js";
import { groupsHandlers } from "./handlers/groups-handlers.js";
import { type DeviceStreamDeps } from "./handlers/device-stream.js";
import { messagingHandlers } from "./handlers/messaging-handlers.js";
import { presenceHandlers } from "./handlers/presence-handlers.js";
import { pushHandlers } from "./handlers/push-handlers.js";
import { syncHandlers } from "./handlers/sync-handlers.js";
import { createBlobRoutes } from "./blob-routes.js";
import { createHealthService, registerHealth, ServingStatus } from "./health.js";
import { createHttpHandler } from "./http-handler.js";
import { listen } from "./listener.js";
import type { Logger } from "./logger.js";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics.js";
import { createNativeStreamHandler } from "./native-stream.js";
import { registerReflection } from "./reflection.js";
import { resolveTokenSecret } from "./token-secret.js";
import { createWebClientHandler } from "./web-client.js";

export interface ChatServer {
  readonly port: number;
  readonly url: string;
  /** Tells every device to reconnect elsewhere, waits for them to leave (up to the drain timeout), then stops. */
  stop(): Promise<void>;
}

/** Wires the engines named by the configuration to the services and serves them on one port. */
export async function startChatServer(config: GatewayConfig, logger: Logger): Promise<ChatServer> {
  const graphqlSettings = graphqlSettingsFrom(config);
  const metrics = config.metrics ? createGatewayMetrics(logger) : undefined;
  let listeningUrl = "";
  const backends = await openBackends(config, logger, {
    publicUrl: () => config.publicUrl || listeningUrl,
    ...(metrics ? { countStoreRequest: metrics.storeRequest } : {}),
  });
  const { store, bus, sessions, sendLimiter, presence: presenceRegistry } = metrics ? timedBackends(backends, config, metrics) : backends;
  const telemetry = metrics?.telemetry;
  metrics?.watchBacklog(backends.bus);
  const tokens = createAccessTokenSigner(resolveTokenSecret(config.tokenSecret, config.dataDir), config.accessTokenTtlSeconds);
  const passwordHasher = createPasswordHasher({ threads: config.passwordHashThreads, queueLimit: config.passwordHashQueue });
  const accounts = createAccountsService({
    store: store.accounts,
    bus,
    tokens,
    passwordCost: config.passwordCost,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    hasher: passwordHasher,
    loginThrottle: createLoginThrottle(backends.loginLimiters),
  });
  const pushWorker = createPushWorker({
    store: backends.push,
    senders: backends.pushSenders,
    retry: { maxAttempts: config.pushRetryMaxAttempts, initialBackoffMs: config.pushRetryInitialMs, maxBackoffMs: config.pushRetryMaxMs },
    pollMs: config.pushPollMs,
    // Longer than any try may take, so only a job whose gateway died is claimed twice.
    leaseMs: 2 * config.pushTimeoutMs + 1_000,
    log: (entry) => logPush(logger, entry),
  });
  const reportPushError = (error: unknown, what: string) => logger.error({ err: error, event: "push_failed", what }, `${what} failed`);
  const push = createPushService({
    store: backends.push,
    conversations: store.conversations,
    sessions,
    vapidPublicKey: backends.vapid.publicKey,
    onQueued: () => pushWorker.wake(),
    onError: reportPushError,
  });
  const attachments = createAttachmentsService({
    blobs: backends.blobs,
    conversations: store.conversations,
    maxBytes: config.uploadMaxBytes,
    allowedContentTypes: config.uploadContentTypes,
    uploadUrlTtlMs: config.uploadUrlTtlMs,
    downloadUrlTtlMs: config.downloadUrlTtlMs,
  });
  const messaging = createMessagingService({
    accounts: store.accounts,
    conversations: store.conversations,
    messages: store.messages,
    bus,
    sendLimiter,
    telemetry,
    attachments,
    afterPublish: push.messageStored,
  });
  const sync = withdrawOnRead(
    createSyncService({ conversations: store.conversations, messages: store.messages, receipts: store.receipts, messaging, bus }),
    push,
    reportPushError,
  );
  const groups = createGroupsService({ accounts: store.accounts, conversations: store.conversations, bus, maxMembers: config.groupMaxMembers });
  const typing = createTypingNotifier({ conversations: store.conversations, bus, throttleMs: config.typingThrottleMs, ttlMs: config.typingTtlMs });
  const presence = createPresenceService(presenceRegistry);
  const authenticate = bearerAuthenticator(accounts);
  const draining = new AbortController();
  // Every open device stream listens for the drain: thousands of listeners are expected, not a leak.
  setMaxListeners(0, draining.signal);
  let ready = false;
  const servedServices = [AccountsService, MessagingService, SyncService, GroupsService, PresenceService, PushService, AttachmentsService];
  const health = createHealthService({
    services: servedServices.map((service) => service.typeName),
    initialStatus: ServingStatus.NOT_SERVING,
    shutdown: draining.signal,
  });

  const deviceSession: DeviceSessionOptions = {
    messaging,
    sync,
    typing,
    presence: presenceRegistry,
    bus,
    helloTimeoutMs: config.helloTimeoutMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    reconcileIntervalMs: config.reconcileIntervalMs,
    outboundLimit: config.outboundLimit,
    catchUpPageSize: 500,
    maxResumeCursors: 100_000,
    shutdown: draining.signal,
    reconnectAfterMs: 0,
    telemetry,
  };
  const deviceStreams: DeviceStreamDeps = { session: deviceSession, sessions, logger, slowConsumerGraceMs: config.slowConsumerResetMs, countError: metrics?.error };
  const nativeStream =
    config.streamHandler === "native"
      ? createNativeStreamHandler({
          deps: deviceStreams,
          authenticate: (token) => accounts.authenticate(token),
          maxRequestBytes: config.maxRequestBytes,
          toClientError: (error) => toConnectError(error, logger, `${MessagingService.typeName}.stream`, metrics?.error),
        })
      : undefined;
  // GraphQL calls the same services; its subscriptions are device sessions like the Connect stream.
  const graphql = createGraphQLEndpoint({
    services: { accounts, messaging, sync, groups, typing, presence, attachments, push, deviceSession, sessions },
    settings: graphqlSettings,
    logger,
    maxRequestBytes: config.maxRequestBytes,
    countError: metrics?.graphqlError,
    allowedOrigins: config.allowedOrigins,
    trustForwardedFor: config.trustForwardedFor,
  });

  // The browser client speaks GraphQL (HTTP and graphql-ws) to this same port.
  const webClient = createWebClientHandler(fileURLToPath(new URL("../clients/web/", import.meta.url)));

  const routes = (router: ConnectRouter) => {
    router.service(AccountsService, mapErrors(AccountsService.typeName, accountsHandlers(accounts, authenticate), logger, metrics?.error));
    router.service(
      MessagingService,
      mapErrors(
        MessagingService.typeName,
        messagingHandlers(messaging, authenticate, deviceStreams),
        logger,
        metrics?.error,
      ),
    );
    router.service(SyncService, mapErrors(SyncService.typeName, syncHandlers(sync, authenticate), logger, metrics?.error));
    router.service(GroupsService, mapErrors(GroupsService.typeName, groupsHandlers(groups, authenticate), logger, metrics?.error));
    router.service(PresenceService, mapErrors(PresenceService.typeName, presenceHandlers(presence, authenticate), logger, metrics?.error));
    router.service(PushService, mapErrors(PushService.typeName, pushHandlers(push, authenticate), logger, metrics?.error));
    router.service(AttachmentsService, mapErrors(AttachmentsService.typeName, attachmentsHandlers(attachments, authenticate), logger, metrics?.error));
    registerHealth(router, health);
    registerReflection(router, servedServices);
  };

  const listener = await listen({
    host: config.host,
    port: config.port,
    tlsCertFile: config.tlsCertFile,
    tlsKeyFile: config.tlsKeyFile,
    idleConnectionTimeoutMs: config.idleConnectionTimeoutMs,
    handler: createHttpHandler({
      routes,
      maxRequestBytes: config.maxRequestBytes,
      logger,
      isReady: () => ready,
      trustForwardedFor: config.trustForwardedFor,
      graphql,
      metrics,
      webClient,
      blobs: backends.localBlobs && createBlobRoutes(backends.localBlobs, logger),
    }),
    upgrade: graphql,
    takeStream: nativeStream,
  });
  ready = true;
  health.resume();
  const url = `${listener.tls ? "https" : "http"}://${config.host}:${listener.port}`;
  listeningUrl = url;
  pushWorker.start();
  logger.info({ event: "listening", url, port: listener.port, store: config.storeUrl.split(":")[0], bus: config.busUrl }, "chat gateway listening");

  let stopping: Promise<void> | undefined;
  return {
    port: listener.port,
    url,
    stop() {
      stopping ??= (async () => {
        ready = false;
        draining.abort();
        const closed = listener.close();
        // Device streams got their go_away from the drain signal; give them a moment to send it.
        await new Promise((resolve) => setTimeout(resolve, 20));
        listener.drain();
        const deadline = Date.now() + config.drainTimeoutMs;
        while (listener.connectionCount() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        listener.destroyAll();
        await closed;
        await graphql.close();
        await push.drain();
        await pushWorker.stop();
        await passwordHasher.close();
        await backends.close();
        logger.info({ event: "stopped" }, "chat gateway stopped");
      })();
      return stopping;
    },
  };
}

/** One log line per push outcome; ids only, never the preview text. */
function logPush(logger: Logger, entry: PushWorkerEvent): void {
  if (entry.event === "push_worker_error") {
    logger.error({ event: entry.event, err: entry.error }, "push worker failed");
    return;
  }
  const { job } = entry;
  const fields = { event: entry.event, jobId: job.jobId, kind: job.kind, deviceId: job.deviceId, conversationId: job.conversationId, seq: job.seq, attempt: job.attempts };
  switch (entry.event) {
    case "push_sent":
      logger.info(fields, "push delivered");
      return;
    case "push_retry":
      logger.warn({ ...fields, error: entry.error, retryInMs: entry.retryInMs }, "push failed; will retry");
      return;
    case "push_dead_lettered":
      logger.error({ ...fields, error: entry.error }, "push failed for the last time; kept as a dead letter");
      return;
    case "push_target_gone":
      logger.info({ ...fields, error: entry.error }, "push target is gone; removed");
      return;
    case "push_no_target":
      logger.debug(fields, "push dropped: the device has no push target any more");
  }
}

/** The same engines, with every call timed (Cassandra, Redis and NATS latencies in cluster mode). */
function timedBackends(backends: Backends, config: GatewayConfig, metrics: GatewayMetrics): Backends {
  const engine = (url: string) => url.split(":", 1)[0]!;
  const store = engine(config.storeUrl);
  const presence = engine(config.presenceUrl);
  return {
    ...backends,
    store: {
      accounts: metrics.timed(backends.store.accounts, "store", store),
      conversations: metrics.timed(backends.store.conversations, "store", store),
      messages: metrics.timed(backends.store.messages, "store", store),
      receipts: metrics.timed(backends.store.receipts, "store", store),
      close: () => backends.store.close(),
    },
    bus: metrics.timed(backends.bus, "bus", engine(config.busUrl)),
    presence: metrics.timed(backends.presence, "presence", presence),
    sessions: metrics.timed(backends.sessions, "sessions", presence),
    sendLimiter: metrics.timed(backends.sendLimiter, "rate_limit", presence),
  };
}
