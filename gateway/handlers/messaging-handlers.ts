import { Code, type ServiceImpl } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/chat/v1/errors_pb.js";
import type { MessagingService as MessagingServiceDesc } from "../../gen/chat/v1/messaging_pb.js";
import { runDeviceSession, type DeviceSessionOptions, type MessagingService } from "../../services/messaging/index.js";
import type { SessionRegistry } from "../../services/ports/index.js";
import type { Authenticate } from "../authenticate.js";
import type { CountError } from "../connect-errors.js";
import type { Logger } from "../logger.js";
import { surfaceOf } from "../metrics.js";
import { requestIdOf } from "../request-id.js";
import { kResetStream } from "../stream-reset.js";

export function messagingHandlers(
  messaging: MessagingService,
  authenticate: Authenticate,
  session: DeviceSessionOptions,
  sessions: SessionRegistry,
  logger: Logger,
  /**
   * How long a device that fell behind has to take the SLOW_CONSUMER end of its stream before the
   * stream is reset: a device that reads again gets the typed error, one that never does stops holding
   * a registration, a queue and a place in the fan-out.
   */
  slowConsumerGraceMs: number,
  countError?: CountError,
): ServiceImpl<typeof MessagingServiceDesc> {
  return {
    stream(requests, context) {
      let resetTimer: NodeJS.Timeout | undefined;
      // The router holds the generator parked at a frame it cannot write, so it would never end it:
      // the reset ends it from here, which runs the session's cleanup (registration, presence).
      const onSlowConsumer = () => {
        const reset = context.values.get(kResetStream);
        if (resetTimer || !reset) return;
        resetTimer = setTimeout(() => {
          logger.info({ event: "stream_reset", streamId: requestIdOf(context.requestHeader), reason: "slow_consumer" }, "device stopped reading: its stream is reset");
          countError?.(Code.ResourceExhausted, ErrorReason.SLOW_CONSUMER);
          reset();
          void frames.return(undefined).catch(() => undefined);
        }, slowConsumerGraceMs);
        resetTimer.unref();
      };
      const frames = (async function* () {
        const principal = await authenticate(context);
        // Registered before the session reads the store, so a message committed after that read is
        // routed to this gateway, and one committed before it is in what the session reads.
        await sessions.register(principal.userId, principal.deviceId);
        const streamId = requestIdOf(context.requestHeader);
        const surface = surfaceOf(context.requestHeader.get("content-type"));
        const opened = Date.now();
        logger.info({ event: "stream_open", streamId, surface, userId: principal.userId, deviceId: principal.deviceId }, "device stream opened");
        try {
          yield* runDeviceSession(session, principal, requests, context.signal, { surface, streamId, onSlowConsumer });
        } finally {
          clearTimeout(resetTimer);
          logger.info({ event: "stream_close", streamId, surface, durationMs: Date.now() - opened }, "device stream closed");
          await sessions.unregister(principal.userId, principal.deviceId);
        }
      })();
      return frames;
    },
    async sendMessage(request, context) {
      return messaging.send(await authenticate(context), request, requestIdOf(context.requestHeader));
    },
    async getHistory(request, context) {
      return messaging.getHistory(await authenticate(context), request);
    },
    async openDirectConversation(request, context) {
      return { conversation: await messaging.openDirectConversation(await authenticate(context), request.userId) };
    },
    async getConversation(request, context) {
      return { conversation: await messaging.getConversation(await authenticate(context), request.conversationId) };
    },
  };
}
