import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import type { EventBus, Surface, Telemetry } from "../services/ports/index.js";
import type { RequestHandler } from "./listener.js";
import type { Logger } from "./logger.js";
import { writeHead } from "./write-head.js";

const SURFACES: readonly Surface[] = ["connect", "grpc", "grpc_web", "graphql"];
// Seconds; chat latencies are mostly milliseconds, with a tail into seconds under load.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CODE_NAMES: Record<number, string> = {
  1: "canceled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded", 5: "not_found", 6: "already_exists",
  7: "permission_denied", 8: "resource_exhausted", 9: "failed_precondition", 10: "aborted", 11: "out_of_range",
  12: "unimplemented", 13: "internal", 14: "unavailable", 15: "data_loss", 16: "unauthenticated",
};

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly telemetry: Telemetry;
  /** Counts an error a client was given, by its code and reason (both from closed enums). */
  error(code: number, reason: number): void;
  /** The same, for GraphQL: its gRPC code name and `extensions.code` (a reason name or a GRAPHQL_* code). */
  graphqlError(grpcCode: string, code: string): void;
  /** Times every async method of `target` into `chat_backend_call_seconds{backend, engine, method}`. */
  timed<T extends object>(target: T, backend: string, engine: string): T;
  /** Counts a request the store sent to its engine, and whether it ran a consensus (Paxos) round. */
  storeRequest(operation: string, paxos: boolean): void;
  /** Reports the bus's queue for this gateway (JetStream consumer pending counts) at each scrape. */
  watchBacklog(bus: EventBus): void;
  readonly handle: RequestHandler;
}

/** One registry per gateway instance, so two gateways in one process (tests) never share counters. */
export function createGatewayMetrics(logger: Logger): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named `_total` (prom-client's naming) fail `promtool check metrics`; the handle counts they
  // report are a debugging aid, not something to alert on.
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) registry.removeSingleMetric(name);
  const registers = [registry];

  const devices = new Gauge({ name: "chat_connected_devices", help: "Device streams open on this gateway, by surface", labelNames: ["surface"], registers });
  for (const surface of SURFACES) devices.set({ surface }, 0);
  const accepted = new Counter({ name: "chat_messages_accepted_total", help: "Messages stored and published (duplicates of a retried send not counted)", registers });
  const delivered = new Counter({ name: "chat_messages_delivered_total", help: "Message frames handed to device streams (live and catch-up)", registers });
  const sendToAck = new Histogram({ name: "chat_send_to_ack_seconds", help: "From a send arriving to its ack (validated, stored, published)", buckets: LATENCY_BUCKETS, registers });
  const sendToDeliver = new Histogram({ name: "chat_send_to_deliver_seconds", help: "From a message's sentAt to its frame being handed to a device stream", buckets: LATENCY_BUCKETS, registers });
  const storeWrite = new Histogram({ name: "chat_store_write_seconds", help: "Time of the durable message append", buckets: LATENCY_BUCKETS, registers });
  const fanOut = new Histogram({ name: "chat_fanout_lag_seconds", help: "From the store's ack to the bus publish completing", buckets: LATENCY_BUCKETS, registers });
  const errors = new Counter({ name: "chat_errors_total", help: "Errors returned to clients, by code and reason", labelNames: ["code", "reason"], registers });
  const watchers = new Gauge({ name: "chat_presence_watchers", help: "Device streams watching presence", registers });
  const backendCalls = new Histogram({
    name: "chat_backend_call_seconds",
    help: "Calls into the store, bus and presence engines (Cassandra, Redis, NATS in cluster mode)",
    labelNames: ["backend", "engine", "method", "outcome"],
    buckets: LATENCY_BUCKETS,
    registers,
  });

  const storeRequests = new Counter({ name: "chat_store_requests_total", help: "Requests the store sent to its engine (Cassandra), by operation", labelNames: ["operation"], registers });
  const paxosRounds = new Counter({ name: "chat_store_paxos_rounds_total", help: "Store requests that ran a Paxos round (lightweight transactions, SERIAL reads), by operation", labelNames: ["operation"], registers });
  const storeRequest = (operation: string, paxos: boolean) => {
    storeRequests.inc({ operation });
    if (paxos) paxosRounds.inc({ operation });
  };

  const error = (code: number, reason: number) => {
    errors.inc({ code: CODE_NAMES[code] ?? "unknown", reason: (ErrorReason[reason] ?? "UNKNOWN").toLowerCase() });
  };

  const telemetry: Telemetry = {
    messageAccepted(trace, ms) {
      accepted.inc();
      sendToAck.observe(ms / 1000);
      // Debug like the delivery line: at thousands of sends a second an info line per message would be
      // a tenth of the gateway's CPU. The counters and histograms above carry the rates.
      if (logger.isLevelEnabled("debug")) logger.debug(
        { event: "message_accepted", traceId: trace.traceId, messageId: trace.messageId, conversationId: trace.conversationId, seq: String(trace.seq), ms: Math.round(ms * 10) / 10 },
        "message accepted",
      );
    },
    messageDelivered(trace, ms) {
      delivered.inc();
      sendToDeliver.observe(Math.max(0, ms) / 1000);
      if (logger.isLevelEnabled("debug")) logger.debug({ event: "message_delivered", traceId: trace.traceId, messageId: trace.messageId, conversationId: trace.conversationId, seq: String(trace.seq), ms }, "message delivered");
    },
    storeWrite: (ms) => storeWrite.observe(ms / 1000),
    fanOut: (ms) => fanOut.observe(ms / 1000),
    deviceConnected: (surface) => devices.inc({ surface }),
    deviceDisconnected: (surface) => devices.dec({ surface }),
    presenceWatchStarted: () => watchers.inc(),
    presenceWatchEnded: () => watchers.dec(),
    frameRejected: (code, reason) => error(code, reason),
  };

  function timed<T extends object>(target: T, backend: string, engine: string): T {
    // One wrapper per method, made at its first call, with its labelled series looked up once: this
    // sits on every store call of every send.
    const wrappers = new Map<string, (...args: unknown[]) => unknown>();
    return new Proxy(target, {
      get(object, property, receiver) {
        const value: unknown = Reflect.get(object, property, receiver);
        if (typeof value !== "function" || typeof property !== "string") return value;
        let wrapper = wrappers.get(property);
        if (!wrapper) {
          const method = value as (...a: unknown[]) => unknown;
          const ok = backendCalls.labels({ backend, engine, method: property, outcome: "ok" });
          const failed = backendCalls.labels({ backend, engine, method: property, outcome: "error" });
          wrapper = (...args: unknown[]) => {
            // Started before the call: an embedded engine does its work before it returns the promise.
            const started = performance.now();
            const result = method.apply(object, args);
            if (!(result instanceof Promise)) return result;
            return result.then(
              (resolved: unknown) => (ok.observe((performance.now() - started) / 1000), resolved),
              (reason: unknown) => {
                failed.observe((performance.now() - started) / 1000);
                throw reason;
              },
            );
          };
          wrappers.set(property, wrapper);
        }
        return wrapper;
      },
    });
  }

  function watchBacklog(bus: EventBus): void {
    const backlog = bus.backlog?.bind(bus);
    if (!backlog) return;
    new Gauge({
      name: "chat_bus_consumer_pending",
      help: "Events in this gateway's JetStream consumer: not yet delivered (pending) or delivered and not yet acked (ack_pending)",
      labelNames: ["state"],
      registers,
      async collect() {
        try {
          const { pending, ackPending } = await backlog();
          this.set({ state: "pending" }, pending);
          this.set({ state: "ack_pending" }, ackPending);
        } catch (failure) {
          // NATS being away must not fail the whole scrape; the series simply goes missing.
          this.reset();
          logger.debug({ err: failure }, "bus backlog unavailable");
        }
      },
    });
  }

  const handle: RequestHandler = (_request, response) => {
    registry.metrics().then(
      (body) => {
        writeHead(response, 200, { "content-type": registry.contentType, "cache-control": "no-store" });
        response.end(body);
      },
      (failure: unknown) => {
        logger.error({ err: failure }, "metrics collection failed");
        writeHead(response, 500, { "content-type": "text/plain; charset=utf-8" });
        response.end("metrics collection failed\n");
      },
    );
  };

  const graphqlError = (grpcCode: string, code: string) => errors.inc({ code: grpcCode, reason: code.toLowerCase() });

  return { registry, telemetry, error, graphqlError, timed, storeRequest, watchBacklog, handle };
}

/** The surface a request came in on, from its content type (gRPC-web before gRPC: it shares the prefix). */
export function surfaceOf(contentType: string | null | undefined): Surface {
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("application/grpc-web")) return "grpc_web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect";
}
