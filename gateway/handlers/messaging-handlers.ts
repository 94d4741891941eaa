import type { ServiceImpl } from "@connectrpc/connect";
import type { MessagingService as MessagingServiceDesc } from "../../gen/chat/v1/messaging_pb.js";
import { runDeviceSession, type DeviceSessionOptions, type MessagingService } from "../../services/messaging/index.js";
import type { SessionRegistry } from "../../services/ports/index.js";
import type { Authenticate } from "../authenticate.js";
import type { Logger } from "../logger.js";
import { surfaceOf } from "../metrics.js";
import { requestIdOf } from "../request-id.js";

export function messagingHandlers(
  messaging: MessagingService,
  authenticate: Authenticate,
  session: DeviceSessionOptions,
  sessions: SessionRegistry,
  logger: Logger,
): ServiceImpl<typeof MessagingServiceDesc> {
  return {
    async *stream(requests, context) {
      const principal = await authenticate(context);
      // Registered before the session reads the store, so a message committed after that read is
      // routed to this gateway, and one committed before it is in what the session reads.
      await sessions.register(principal.userId, principal.deviceId);
      const streamId = requestIdOf(context.requestHeader);
      const surface = surfaceOf(context.requestHeader.get("content-type"));
      const opened = Date.now();
      logger.info({ event: "stream_open", streamId, surface, userId: principal.userId, deviceId: principal.deviceId }, "device stream opened");
      try {
        yield* runDeviceSession(session, principal, requests, context.signal, { surface, streamId });
      } finally {
        logger.info({ event: "stream_close", streamId, surface, durationMs: Date.now() - opened }, "device stream closed");
        await sessions.unregister(principal.userId, principal.deviceId);
      }
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
