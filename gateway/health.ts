import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/** The name under which the health of the whole server is reported, as the protocol defines it. */
export const SERVER = "";

export interface HealthOptions {
  /** Service names to report besides the whole server (""), e.g. `MessagingService.typeName`. */
  readonly services?: Iterable<string>;
  /** Status of every entry at creation; defaults to SERVING. */
  readonly initialStatus?: ServingStatus;
  /**
   * When aborted (the gateway is draining), every entry goes NOT_SERVING and every Watch stream ends
   * right after telling its client so; without that, a load balancer's open Watch would keep its
   * connection, and so the drain, waiting until the drain timeout.
   */
  readonly shutdown?: AbortSignal;
}

export interface HealthService {
  /** Sets (or adds) one entry; ignored while shut down, see `setAllNotServing`. */
  setStatus(service: string, status: ServingStatus): void;
  /**
   * Every entry goes NOT_SERVING and stays so (later `setStatus` calls are ignored) until `resume`:
   * a component reporting SERVING in the middle of a drain must not draw traffic to a dying process.
   */
  setAllNotServing(): void;
  /** Every entry goes SERVING and `setStatus` takes effect again. */
  resume(): void;
  /** Undefined for a service name that was never set. */
  getStatus(service: string): ServingStatus | undefined;
  statuses(): ReadonlyMap<string, ServingStatus>;
  /** Calls `onChange` after any entry changes; returns the unsubscribe function. */
  subscribe(onChange: () => void): () => void;
  /** Aborted when the `shutdown` option's signal aborts (never, without one). */
  readonly shutdownSignal: AbortSignal;
}

export function createHealthService(options: HealthOptions = {}): HealthService {
  const initial = options.initialStatus ?? ServingStatus.SERVING;
  const entries = new Map<string, ServingStatus>([[SERVER, initial]]);
  for (const service of options.services ?? []) entries.set(service, initial);
  const listeners = new Set<() => void>();
  let frozen = false;

  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  const setEvery = (status: ServingStatus) => {
    for (const service of entries.keys()) entries.set(service, status);
    notify();
  };

  const health: HealthService = {
    setStatus(service, status) {
      if (frozen || entries.get(service) === status) return;
      entries.set(service, status);
      notify();
    },
    setAllNotServing() {
      frozen = true;
      setEvery(ServingStatus.NOT_SERVING);
    },
    resume() {
      frozen = false;
      setEvery(ServingStatus.SERVING);
    },
    getStatus: (service) => entries.get(service),
    statuses: () => new Map(entries),
    subscribe(onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    shutdownSignal: options.shutdown ?? new AbortController().signal,
  };
  options.shutdown?.addEventListener("abort", () => health.setAllNotServing(), { once: true });
  if (options.shutdown?.aborted) health.setAllNotServing();
  return health;
}

const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

/**
 * Watch sends the current status at once, then the latest status whenever it differs from the one
 * last sent. Changes that come faster than the client reads are coalesced, as in grpc-go: a health
 * watcher wants the present state, not the history. An unknown service is reported as
 * SERVICE_UNKNOWN (not an error), as the protocol asks, so a watcher can wait for it to appear.
 */
async function* watch(health: HealthService, service: string, signal: AbortSignal): AsyncGenerator<HealthCheckResponse> {
  let dirty = true;
  let wake: (() => void) | undefined;
  const onChange = () => {
    dirty = true;
    wake?.();
  };
  const unsubscribe = health.subscribe(onChange);
  signal.addEventListener("abort", onChange);
  health.shutdownSignal.addEventListener("abort", onChange);
  let last: ServingStatus | undefined;
  try {
    for (;;) {
      if (!dirty) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      dirty = false;
      if (signal.aborted) return;
      const current = health.getStatus(service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (current !== last) {
        last = current;
        yield response(current);
      }
      if (health.shutdownSignal.aborted) return;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onChange);
    health.shutdownSignal.removeEventListener("abort", onChange);
  }
}

/** The grpc.health.v1.Health implementation, for callers that wrap handlers (e.g. `mapErrors`). */
export function healthHandlers(health: HealthService): ServiceImpl<typeof Health> {
  return {
    async check(request) {
      const status = health.getStatus(request.service);
      if (status === undefined) throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
      return response(status);
    },
    async list() {
      return { statuses: Object.fromEntries([...health.statuses()].map(([service, status]) => [service, response(status)])) };
    },
    watch: (request, context: HandlerContext) => watch(health, request.service, context.signal),
  };
}

export function registerHealth(router: ConnectRouter, health: HealthService): void {
  router.service(Health, healthHandlers(health));
}
