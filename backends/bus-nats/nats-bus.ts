import { randomBytes } from "node:crypto";
import { connect, Events, type ConnectionOptions, type ConsumerMessages, type JsMsg, type NatsConnection, type Status } from "nats";
import type { EventBus, SessionRegistry } from "../../services/ports/index.js";
import { decodeEnvelope, encodeEvent, encodeEventEnvelope, encodeLostEnvelope } from "./envelope.js";
import { BusEventsLostError } from "./errors.js";
import { createLocalDelivery } from "./local-delivery.js";
import { createOutbox, type OutboxMessage } from "./outbox.js";
import { durableOf, ensureTopology, GATEWAY_ID_PATTERN, subjectOf, type TopologyOptions } from "./topology.js";

/** What this engine logs: outages, drops and recoveries (pino's `warn(obj, msg)` fits). */
export interface BusLogger {
  warn(details: object, message: string): void;
}

export interface NatsBusOptions {
  /** One URL or several, comma-separated. */
  readonly natsUrl: string;
  /** This gateway: its subject is `<subjectPrefix>.gw.<gatewayId>`. Must match `sessions.gatewayId`. */
  readonly gatewayId: string;
  /** Where the recipients' devices are; the device sessions register themselves in it. */
  readonly sessions: SessionRegistry;
  readonly streamName?: string;
  /** Lets several deployments share a NATS server; subjects of two streams must not overlap. */
  readonly subjectPrefix?: string;
  /**
   * Retention: how long a message waits for a gateway that does not take it (stopped, or gone for
   * good), and how long an idle consumer is kept. A gateway back within this time gets its backlog.
   */
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
  /** Backlog bound per gateway: past it the oldest message for that gateway is discarded. */
  readonly maxMessagesPerGateway?: number;
  readonly replicas?: number;
  /** A message handed to this gateway but not acknowledged in time goes to it again. */
  readonly ackWaitMs?: number;
  /** Messages fetched ahead per pull: the bound of the client-side buffer. */
  readonly pullBatch?: number;
  /** See outbox.ts: how many messages may wait for NATS, for how long, how many go at once. */
  readonly outboxLimit?: number;
  readonly outboxMaxAgeMs?: number;
  readonly maxInFlight?: number;
  /** How long a publish waits for JetStream's acknowledgement before it is retried. */
  readonly publishTimeoutMs?: number;
  /** close() waits at most this long for queued messages to go out. */
  readonly closeTimeoutMs?: number;
  /** Passed to nats.js `connect` (servers and name are set from the options above). */
  readonly connectionOptions?: Partial<ConnectionOptions>;
  readonly logger?: BusLogger;
}

const DEFAULTS = {
  streamName: "CHAT_EVENTS",
  subjectPrefix: "chat",
  maxAgeMs: 15 * 60_000,
  maxBytes: 1024 ** 3,
  maxMessagesPerGateway: 1_000_000,
  replicas: 1,
  ackWaitMs: 10_000,
  pullBatch: 256,
  outboxLimit: 10_000,
  outboxMaxAgeMs: 10_000,
  maxInFlight: 256,
  publishTimeoutMs: 2_000,
  closeTimeoutMs: 5_000,
} as const;
/** Pulls expire (and are renewed) this often; the client's heartbeat check runs on half of it. */
const PULL_EXPIRES_MS = 10_000;
const RETRY_DELAY_MS = 200;
const MAX_LOST_USERS = 1000;
const MAX_RESTART_DELAY_MS = 5_000;

/**
 * The event bus of a cluster of gateways, on NATS JetStream (see README.md for the design).
 *
 * publish(): delivers at once to this gateway's own subscribers, looks the other recipients' gateways
 * up in the session registry, and queues one message per other gateway (carrying the event and that
 * gateway's recipients) on the outbox, in call order. It resolves without waiting for NATS and never
 * rejects: the event is already durable in the store, and when it cannot be carried the recipients'
 * subscriptions are ended (BusEventsLostError) so their devices resume from the store.
 *
 * Each gateway pulls from its durable consumer, hands each message to its local subscriber queues
 * (bounded; a full one ends with BusOverflowError and never slows the others) and only then acks it.
 */
export async function createNatsBus(options: NatsBusOptions): Promise<EventBus> {
  const gatewayId = options.gatewayId;
  if (!GATEWAY_ID_PATTERN.test(gatewayId)) throw new RangeError(`gatewayId must match ${GATEWAY_ID_PATTERN}, got "${gatewayId}"`);
  if (options.sessions.gatewayId !== gatewayId) {
    throw new RangeError(`the session registry is gateway "${options.sessions.gatewayId}", the bus "${gatewayId}"`);
  }
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const topology: TopologyOptions = {
    streamName: settings.streamName,
    subjectPrefix: settings.subjectPrefix,
    maxAgeMs: settings.maxAgeMs,
    maxBytes: settings.maxBytes,
    maxMessagesPerGateway: settings.maxMessagesPerGateway,
    // A retry comes within outboxMaxAgeMs of the first attempt; JetStream must still remember its id.
    duplicateWindowMs: Math.min(settings.maxAgeMs, settings.outboxMaxAgeMs + settings.publishTimeoutMs),
    replicas: settings.replicas,
    ackWaitMs: settings.ackWaitMs,
    maxAckPending: settings.pullBatch * 4,
  };
  const logger = options.logger ?? { warn: (details, message) => console.warn(`[bus-nats ${gatewayId}] ${message}`, details) };
  const { sessions } = options;

  const nc: NatsConnection = await connect({
    reconnectTimeWait: 250,
    maxReconnectAttempts: -1,
    pingInterval: 10_000,
    ...options.connectionOptions,
    servers: options.natsUrl.split(","),
    name: `chat-gateway-${gatewayId}`,
  });
  const jsm = await nc.jetstreamManager();
  try {
    await ensureTopology(jsm, topology, gatewayId);
  } catch (error) {
    await nc.close();
    throw error;
  }
  const js = nc.jetstream();

  const local = createLocalDelivery();
  const bootId = randomBytes(6).toString("hex");
  let sent = 0;
  let closed = false;

  let dropped = 0;
  const outbox = createOutbox({
    limit: settings.outboxLimit,
    maxAgeMs: settings.outboxMaxAgeMs,
    maxInFlight: settings.maxInFlight,
    retryDelayMs: RETRY_DELAY_MS,
    maxLostUsers: MAX_LOST_USERS,
    async send(message) {
      await js.publish(subjectOf(settings.subjectPrefix, message.gatewayId), message.data, {
        msgID: message.msgId,
        timeout: settings.publishTimeoutMs,
        expect: { streamName: settings.streamName },
      });
    },
    lostNotice: (target, recipients): OutboxMessage => ({
      gatewayId: target,
      recipients,
      data: encodeLostEnvelope(recipients),
      msgId: nextMsgId(),
      lost: true,
    }),
    onDrop(message, reason) {
      // Once per outage (and then per thousand) is enough to see it happen.
      if (dropped++ % 1000 === 0) {
        logger.warn({ gatewayId: message.gatewayId, reason, droppedSoFar: dropped }, "dropped an event for another gateway; its recipients will be told to resume from the store");
      }
    },
    onSendError: (error) => trouble("publish", error),
  });

  function nextMsgId(): string {
    return `${gatewayId}.${bootId}.${++sent}`;
  }

  // One line when something goes wrong, one when it works again; not one per message.
  const failing = new Set<string>();
  function trouble(what: string, error: unknown): void {
    if (closed || failing.has(what)) return;
    failing.add(what);
    logger.warn({ err: error }, `${what} failed; retrying`);
  }
  function fine(what: string): void {
    if (failing.delete(what)) logger.warn({}, `${what} works again`);
  }

  // nats.js never ends a status iterator by itself, not even on close: close() stops it (the
  // iterator has stop(), its declared type does not).
  const statuses: AsyncIterable<Status> & { stop?(): void } = nc.status();
  const statusLoop = (async () => {
    for await (const status of statuses) {
      if (status.type === Events.Disconnect) {
        outbox.setConnected(false);
        if (!closed) logger.warn({ server: status.data }, "disconnected from NATS; publishes wait in the outbox");
      } else if (status.type === Events.Reconnect) {
        outbox.setConnected(true);
        logger.warn({ server: status.data }, "reconnected to NATS");
      }
    }
  })();

  function handle(message: JsMsg): void {
    let envelope;
    try {
      envelope = decodeEnvelope(message.data);
    } catch (error) {
      logger.warn({ err: error, streamSeq: message.seq }, "undecodable message on the bus; terminated");
      message.term();
      return;
    }
    if (envelope.kind === "lost") {
      local.fail(envelope.to, () => new BusEventsLostError("events for this user could not be carried by the bus; resume from your cursor"));
    } else {
      local.deliver(envelope.to, envelope.event);
    }
    message.ack();
  }

  let consuming: ConsumerMessages | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  const consumeLoop = (async () => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        // Again on every round: the stream or the consumer may be what went missing.
        if (attempt > 0) await ensureTopology(jsm, topology, gatewayId);
        const consumer = await js.consumers.get(settings.streamName, durableOf(gatewayId));
        if (stopping) break;
        consuming = await consumer.consume({ max_messages: settings.pullBatch, expires: PULL_EXPIRES_MS, abort_on_missing_resource: true });
        if (stopping) break;
        fine("consuming");
        attempt = 0;
        for await (const message of consuming) handle(message);
      } catch (error) {
        if (!stopping) trouble("consuming", error);
      }
      if (stopping) break;
      // Backs off while NATS (or JetStream) is unavailable; wakes early on close().
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(RETRY_DELAY_MS * 2 ** attempt, MAX_RESTART_DELAY_MS)).unref();
      });
    }
  })();

  let failedLookups = 0;
  // publish() keeps call order on the outbox although registry lookups may finish out of order.
  let tail: Promise<void> = Promise.resolve();

  let closing: Promise<void> | undefined;
  return {
    async publish(userIds, event) {
      if (closed) return;
      const recipients = [...new Set(userIds)];
      if (recipients.length === 0) return;
      local.deliver(recipients, event);
      const previous = tail;
      let release!: () => void;
      tail = new Promise((resolve) => (release = resolve));
      try {
        let located: Map<string, string[]>;
        try {
          located = await sessions.gatewaysOf(recipients);
          if (failedLookups > 0) {
            logger.warn({ failedLookups }, "session registry answers again");
            failedLookups = 0;
          }
        } catch (error) {
          // Without the registry only this gateway's subscribers got it; the others learn it from
          // the store when they next resume (the registry is out, so they are reconnecting anyway).
          if (failedLookups++ === 0) logger.warn({ err: error }, "session registry lookup failed; event delivered on this gateway only");
          return;
        }
        const byGateway = new Map<string, string[]>();
        for (const [userId, gateways] of located) {
          for (const target of gateways) {
            if (target === gatewayId) continue;
            let users = byGateway.get(target);
            if (!users) byGateway.set(target, (users = []));
            users.push(userId);
          }
        }
        if (byGateway.size === 0) return;
        const eventJson = encodeEvent(event);
        await previous;
        for (const [target, users] of byGateway) {
          outbox.enqueue({ gatewayId: target, recipients: users, data: encodeEventEnvelope(users, eventJson), msgId: nextMsgId(), lost: false });
        }
      } catch (error) {
        logger.warn({ err: error }, "publish failed; event not sent to other gateways");
      } finally {
        await previous;
        release();
      }
    },

    async backlog() {
      const info = await jsm.consumers.info(settings.streamName, durableOf(gatewayId));
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    },
    subscribe(userId, subscribeOptions) {
      return local.subscribe(userId, subscribeOptions);
    },

    close() {
      closing ??= (async () => {
        closed = true;
        await tail;
        if (!(await outbox.flush(settings.closeTimeoutMs))) {
          logger.warn({ waiting: outbox.size }, "closing with events not yet handed to NATS");
        }
        outbox.close();
        // Stop pulling; whatever was fetched but not handled is not acked and goes to this gateway id
        // again (after ackWait), or to its next incarnation.
        stopping = true;
        wake?.();
        await within(settings.closeTimeoutMs, Promise.resolve(consuming?.close()).then(() => consumeLoop));
        local.close();
        // drain() flushes the acks of what was handled; with NATS unreachable it would wait for it.
        if (!(await within(settings.closeTimeoutMs, nc.drain()))) await nc.close();
        statuses.stop?.();
        await within(settings.closeTimeoutMs, statusLoop);
      })();
      return closing;
    },
  } satisfies EventBus;
}

/** Resolves true if the promise settled without an error within ms, false otherwise. */
async function within(ms: number, promise: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Option objects may carry explicit undefineds; they must not override the defaults. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, each]) => each !== undefined)) as Partial<T>;
}
