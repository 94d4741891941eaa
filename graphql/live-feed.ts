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

const draining = () =>
  new ChatError("unavailable", ErrorReason.SERVER_DRAINING, "the server is going away: subscribe again (resuming from your cursors) to reach another gateway");

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
  const options = services.deviceSession;
  const abort = new AbortController();
  const inbound = new AsyncQueue<StreamRequest>();
  inbound.push(
    create(StreamRequestSchema, {
      frame: { case: "hello", value: { clientVersion: "graphql", resume: request.resume && { cursors: request.resume.map((cursor) => ({ ...cursor })) } } },
    }),
  );
  if (request.watchPresence) inbound.push(create(StreamRequestSchema, { frame: { case: "watchPresence", value: { userIds: [...request.watchPresence] } } }));
  const heartbeat = setInterval(() => inbound.push(HEARTBEAT), options.heartbeatIntervalMs);
  heartbeat.unref();
  // A device may hold several subscriptions (and a Connect stream); registrations nest, so one of them
  // ending does not unroute the others.
  const streamId = `${principal.deviceId}/graphql/${randomUUID()}`;

  async function* frames(): AsyncGenerator<ServerFrame> {
    try {
      // Registered before the session reads the store (as the Connect stream does), so events
      // committed after that read are routed to this gateway.
      await services.sessions.register(principal.userId, principal.deviceId);
      yield* runDeviceSession(options, principal, inbound, abort.signal, { surface: "graphql", streamId });
    } finally {
      clearInterval(heartbeat);
      inbound.end();
      await services.sessions.unregister(principal.userId, principal.deviceId);
    }
  }

  const source = frames();
  let finished = false;
  const stop = () => {
    if (finished) return;
    finished = true;
    abort.abort();
    // Runs the session's cleanup now if it is parked at a yield; otherwise once the abort lets it finish.
    source.return(undefined).catch(() => {});
  };
  const done = (): IteratorResult<T | FeedFailure> => ({ done: true, value: undefined });

  return {
    async next() {
      while (!finished) {
        let step: IteratorResult<ServerFrame>;
        try {
          step = await source.next();
        } catch (error) {
          stop();
          return { done: false, value: new FeedFailure(error) };
        }
        if (step.done) break;
        const frame = step.value.frame;
        if (!frame?.case) continue;
        if (frame.case === "goAway") {
          stop();
          return { done: false, value: new FeedFailure(draining()) };
        }
        if (frame.case === "rejected") {
          const status = frame.value.status ?? {};
          stop();
          const code = ERROR_CODES.get(status.code ?? 13) ?? "internal";
          return { done: false, value: new FeedFailure(new ChatError(code, status.reason ?? ErrorReason.INTERNAL, status.message ?? "rejected", status.field ?? "")) };
        }
        const selected = select(frame as Frame);
        if (selected !== undefined) return { done: false, value: selected };
      }
      finished = true;
      return done();
    },
    async return() {
      stop();
      return done();
    },
    async throw() {
      stop();
      return done();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** For a subscription's `resolve`: the event itself, or the error that ended the feed. */
export function unwrapFeed<T>(event: T | FeedFailure): T {
  if (event instanceof FeedFailure) throw event.error;
  return event;
}
