import { Code } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/chat/v1/errors_pb.js";
import type { StreamRequest } from "../../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../../services/accounts/index.js";
import { runDeviceSession, type DeviceSessionOptions, type ServerFrame } from "../../services/messaging/index.js";
import type { SessionRegistry, Surface } from "../../services/ports/index.js";
import type { CountError } from "../connect-errors.js";
import type { Logger } from "../logger.js";

export interface DeviceStreamDeps {
  readonly session: DeviceSessionOptions;
  readonly sessions: SessionRegistry;
  readonly logger: Logger;
  /**
   * How long a device that fell behind has to take the SLOW_CONSUMER end of its stream before the
   * stream is reset: a device that reads again gets the typed error, one that never does stops holding
   * a registration, a queue and a place in the fan-out.
   */
  readonly slowConsumerGraceMs: number;
  readonly countError?: CountError;
}

/** One device stream as both transports see it: the Connect router's and the hand-written HTTP/2 one. */
export interface DeviceStreamCall {
  readonly authenticate: () => Promise<Principal>;
  readonly requests: AsyncIterable<StreamRequest>;
  readonly signal: AbortSignal;
  readonly surface: Surface;
  /** What serves the call, for the logs: the stock Connect router or gateway/native-stream.ts. */
  readonly handler: "router" | "native";
  readonly streamId: string;
  /** Cuts the transport stream; absent where the transport cannot. */
  readonly reset: (() => void) | undefined;
}

/** A device stream past authentication and registration: its session's frames, and how to end it. */
export interface OpenDeviceStream {
  readonly frames: AsyncGenerator<ServerFrame>;
  /** Ends the registration and logs the close; called once the frames are done, however they ended. */
  close(): Promise<void>;
}

/**
 * Authenticates, registers the device with the session registry, and starts its session. Registered
 * before the session reads the store, so a message committed after that read is routed to this
 * gateway, and one committed before it is in what the session reads.
 */
export async function openDeviceStream(deps: DeviceStreamDeps, call: DeviceStreamCall): Promise<OpenDeviceStream> {
  const { logger, sessions } = deps;
  const principal = await call.authenticate();
  await sessions.register(principal.userId, principal.deviceId);
  const opened = Date.now();
  logger.info({ event: "stream_open", streamId: call.streamId, surface: call.surface, handler: call.handler, userId: principal.userId, deviceId: principal.deviceId }, "device stream opened");
  let resetTimer: NodeJS.Timeout | undefined;
  // The transport holds the session parked at a frame it cannot write, so it would never end it:
  // the reset ends it from here, which runs the session's cleanup (presence, subscriptions).
  const onSlowConsumer = () => {
    if (resetTimer || !call.reset) return;
    const reset = call.reset;
    resetTimer = setTimeout(() => {
      logger.info({ event: "stream_reset", streamId: call.streamId, reason: "slow_consumer" }, "device stopped reading: its stream is reset");
      deps.countError?.(Code.ResourceExhausted, ErrorReason.SLOW_CONSUMER);
      reset();
      void frames.return(undefined).catch(() => undefined);
    }, deps.slowConsumerGraceMs);
    resetTimer.unref();
  };
  const frames = runDeviceSession(deps.session, principal, call.requests, call.signal, { surface: call.surface, streamId: call.streamId, onSlowConsumer });
  return {
    frames,
    async close() {
      clearTimeout(resetTimer);
      logger.info({ event: "stream_close", streamId: call.streamId, surface: call.surface, durationMs: Date.now() - opened }, "device stream closed");
      await sessions.unregister(principal.userId, principal.deviceId);
    },
  };
}

/** The same as one generator, for the Connect router. */
export async function* deviceStreamFrames(deps: DeviceStreamDeps, call: DeviceStreamCall): AsyncGenerator<ServerFrame> {
  const stream = await openDeviceStream(deps, call);
  try {
    yield* stream.frames;
  } finally {
    await stream.close();
  }
}
