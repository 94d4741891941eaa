import { create } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { StreamRequestSchema, type StreamRequest } from "../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../services/accounts/index.js";
import { ChatError, ErrorReason, type ErrorCode } from "../services/errors.js";
import { AsyncQueue } from "../lib/async-queue.js";
import { CODE_NUMBERS, runDeviceSession, type ServerFrame } from "../services/messaging/index.js";
import type { GraphQLServices } from "./context.js";

export type Frame = NonNullable<ServerFrame["frame"]>;

/** What a subscription asks its device session for. */
export interface FeedRequest {
  /** As `hello.resume`: absent, live from now; present, everything after these cursors first. */
  readonly resume?: readonly { readonly conversationId: string; readonly seq: bigint }[];
  readonly watchPresence?: readonly string[];
}

/**
 * Why a subscription ended early. Yielded (not thrown) so the GraphQL layer turns it into one last
 * event with `errors` followed by `complete`, instead of graphql-ws closing with a bare message.
 */
export class FeedFailure {
  constructor(readonly error: unknown) {}
}

const HEARTBEAT: StreamRequest = create(StreamRequestSchema, { frame: { case: "heartbeat", value: {} } });
const ERROR_CODES = new Map(Object.entries(CODE_NUMBERS).map(([code, number]) => [number, code as ErrorCode]));

const draining = (reconnectAfterMs: number) =>
  new ChatError(
    "unavailable",
    ErrorReason.SERVER_DRAINING,
    "the server is going away: subscribe again (resuming from your cursors) to reach another gateway",
    "",
    { reconnect_after_ms: String(reconnectAfterMs) },
  );

/**
 * A GraphQL subscription is a device session, the engine of the Connect device stream, driven by
 * frames the server writes itself: `hello` (with the resume cursors), `watch_presence` if asked, and
 * a heartbeat every interval. So a subscriber gets the stream's guarantees unchanged: live events are
 * taken from the bus before the store is read and deduplicated by seq, so the catch-up meets live
 * traffic with no gap and no duplicate; a slow reader is cut off with SLOW_CONSUMER; a drain ends
 * the feed with SERVER_DRAINING.
 *
 * `select` picks the frames this subscription is about. The returned iterator's `return()` ends the
 * session at once (an async generator's would wait for the next frame, which may never come).
 *
 * The session counts as an online device while it runs. It ends like a dropped connection (the user
 * goes offline when the presence timeout passes), because several subscriptions of one device share
 * its presence and one of them ending must not mark the device offline under the others.
 */
export function openFeed<T>(services: GraphQLServices, principal: Principal, request: FeedRequest, select: (frame: Frame) => T | undefined): AsyncIterableIterator<T | FeedFailure> {
  return new Feed(services, principal, request, select);
}

const HEARTBEAT_GROUPS = 15;

/**
 * Heartbeats for every feed of one interval from one timer: feeds are spread over HEARTBEAT_GROUPS
 * groups and one group beats per tick, so each feed still beats once per interval, without a timer
 * per feed and without thousands of sessions beating in the same tick.
 */
class Heartbeats {
  private static readonly byInterval = new Map<number, Heartbeats>();
  private readonly groups = Array.from({ length: HEARTBEAT_GROUPS }, () => new Set<AsyncQueue<StreamRequest>>());
  private timer: NodeJS.Timeout | undefined;
  private added = 0;
  private tick = 0;
  private size = 0;

  private constructor(private readonly intervalMs: number) {}

  static of(intervalMs: number): Heartbeats {
    let heartbeats = Heartbeats.byInterval.get(intervalMs);
    if (!heartbeats) Heartbeats.byInterval.set(intervalMs, (heartbeats = new Heartbeats(intervalMs)));
    return heartbeats;
  }

  add(inbound: AsyncQueue<StreamRequest>): void {
    this.groups[this.added++ % HEARTBEAT_GROUPS]!.add(inbound);
    if (this.size++ === 0) {
      this.timer = setInterval(() => {
        for (const queue of this.groups[this.tick++ % HEARTBEAT_GROUPS]!) queue.push(HEARTBEAT);
      }, this.intervalMs / HEARTBEAT_GROUPS);
      this.timer.unref();
    }
  }

  delete(inbound: AsyncQueue<StreamRequest>): void {
    if (!this.groups.some((group) => group.delete(inbound))) return;
    if (--this.size === 0) clearInterval(this.timer);
  }
}

/**
 * One subscription's session. A class, not closures: one is kept per open subscription, and under
 * tsx every named closure also carries a property table (esbuild's keepNames).
 */
class Feed<T> implements AsyncIterableIterator<T | FeedFailure> {
  private readonly abort = new AbortController();
  private readonly inbound = new AsyncQueue<StreamRequest>();
  private readonly heartbeats: Heartbeats;
  private readonly source: AsyncGenerator<ServerFrame>;
  private finished = false;

  constructor(
    private readonly services: GraphQLServices,
    private readonly principal: Principal,
    request: FeedRequest,
    private readonly select: (frame: Frame) => T | undefined,
  ) {
    this.inbound.push(
      create(StreamRequestSchema, {
        frame: { case: "hello", value: { clientVersion: "graphql", resume: request.resume && { cursors: request.resume.map((cursor) => ({ ...cursor })) } } },
      }),
    );
    if (request.watchPresence) this.inbound.push(create(StreamRequestSchema, { frame: { case: "watchPresence", value: { userIds: [...request.watchPresence] } } }));
    this.heartbeats = Heartbeats.of(services.deviceSession.heartbeatIntervalMs);
    this.heartbeats.add(this.inbound);
    this.source = this.frames();
  }

  private async *frames(): AsyncGenerator<ServerFrame> {
    const { services, principal } = this;
    try {
      // Registered before the session reads the store (as the Connect stream does), so events
      // committed after that read are routed to this gateway. A device may hold several subscriptions
      // (and a Connect stream); registrations nest, so one of them ending does not unroute the others.
      await services.sessions.register(principal.userId, principal.deviceId);
      const streamId = `${principal.deviceId}/graphql/${randomUUID()}`;
      yield* runDeviceSession(services.deviceSession, principal, this.inbound, this.abort.signal, { surface: "graphql", streamId });
    } finally {
      this.heartbeats.delete(this.inbound);
      this.inbound.end();
      await services.sessions.unregister(principal.userId, principal.deviceId);
    }
  }

  /** Ends the session at once (an async generator's `return()` would wait for the next frame, which may never come). */
  private stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.abort.abort();
    // Runs the session's cleanup now if it is parked at a yield; otherwise once the abort lets it finish.
    this.source.return(undefined).catch(() => {});
  }

  async next(): Promise<IteratorResult<T | FeedFailure>> {
    while (!this.finished) {
      let step: IteratorResult<ServerFrame>;
      try {
        step = await this.source.next();
      } catch (error) {
        this.stop();
        return { done: false, value: new FeedFailure(error) };
      }
      if (step.done) break;
      const frame = step.value.frame;
      if (!frame?.case) continue;
      if (frame.case === "goAway") {
        // A feed that shows GOING_AWAY as an event ends after it; the others end with the error.
        const farewell = this.select(frame as Frame);
        this.stop();
        return { done: false, value: farewell ?? new FeedFailure(draining(frame.value.reconnectAfterMs ?? 0)) };
      }
      if (frame.case === "rejected") {
        const status = frame.value.status ?? {};
        this.stop();
        const code = ERROR_CODES.get(status.code ?? 13) ?? "internal";
        return { done: false, value: new FeedFailure(new ChatError(code, status.reason ?? ErrorReason.INTERNAL, status.message ?? "rejected", status.field ?? "")) };
      }
      const selected = this.select(frame as Frame);
      if (selected !== undefined) return { done: false, value: selected };
    }
    this.finished = true;
    return { done: true, value: undefined };
  }

  async return(): Promise<IteratorResult<T | FeedFailure>> {
    this.stop();
    return { done: true, value: undefined };
  }

  async throw(): Promise<IteratorResult<T | FeedFailure>> {
    this.stop();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** For a subscription's `resolve`: the event itself, or the error that ended the feed. */
export function unwrapFeed<T>(event: T | FeedFailure): T {
  if (event instanceof FeedFailure) throw event.error;
  return event;
}
