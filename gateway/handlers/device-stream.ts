import { Code } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/chat/v1/errors_pb.js";
import type { StreamRequest } from "../../gen/chat/v1/messaging_pb.js";
import type { Principal } from "../../services/accounts/index.js";
import { runDeviceSession, type DeviceSessionOptions, type ServerFrame, type SessionOrigin } from "../../services/messaging/index.js";
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
  authenticate(): Promise<Principal>;
  readonly requests: AsyncIterable<StreamRequest>;
  readonly signal: AbortSignal;
  readonly surface: Surface;
  /** What serves the call, for the logs: the stock Connect router or gateway/native-stream.ts. */
  readonly handler: "router" | "native";
  readonly streamId: string;
  /** Cuts the transport stream; absent where the transport cannot. */
  readonly reset?: (() => void) | undefined;
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
  const principal = await call.authenticate();
  await deps.sessions.register(principal.userId, principal.deviceId);
  return new DeviceStream(deps, call, principal);
}

/**
 * Also the session's origin: its slow-consumer hook is a method here, not a closure per stream (a
 * gateway holds tens of thousands of idle ones).
 */
class DeviceStream implements OpenDeviceStream, SessionOrigin {
  readonly frames: AsyncGenerator<ServerFrame>;
  readonly surface: Surface;
  readonly streamId: string;
  private readonly opened = Date.now();
  private resetTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: DeviceStreamDeps,
    private readonly call: DeviceStreamCall,
    private readonly principal: Principal,
  ) {
    this.surface = call.surface;
    this.streamId = call.streamId;
    deps.logger.info(
      { event: "stream_open", streamId: call.streamId, surface: call.surface, handler: call.handler, userId: principal.userId, deviceId: principal.deviceId },
      "device stream opened",
    );
    this.frames = runDeviceSession(deps.session, principal, call.requests, call.signal, this);
  }

  // The transport holds the session parked at a frame it cannot write, so it would never end it:
  // the reset ends it from here, which runs the session's cleanup (presence, subscriptions).
  onSlowConsumer(): void {
    if (this.resetTimer || !this.call.reset) return;
    this.resetTimer = setTimeout(() => {
      this.deps.logger.info({ event: "stream_reset", streamId: this.streamId, reason: "slow_consumer" }, "device stopped reading: its stream is reset");
      this.deps.countError?.(Code.ResourceExhausted, ErrorReason.SLOW_CONSUMER);
      this.call.reset?.();
      void this.frames.return(undefined).catch(() => undefined);
    }, this.deps.slowConsumerGraceMs);
    this.resetTimer.unref();
  }

  async close(): Promise<void> {
    clearTimeout(this.resetTimer);
    this.deps.logger.info({ event: "stream_close", streamId: this.streamId, surface: this.surface, durationMs: Date.now() - this.opened }, "device stream closed");
    await this.deps.sessions.unregister(this.principal.userId, this.principal.deviceId);
  }
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
