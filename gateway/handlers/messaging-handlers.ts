import type { ServiceImpl } from "@connectrpc/connect";
import type { MessagingService as MessagingServiceDesc } from "../../gen/chat/v1/messaging_pb.js";
import { runDeviceSession, type DeviceSessionOptions, type MessagingService } from "../../services/messaging/index.js";
import type { SessionRegistry } from "../../services/ports/index.js";
import type { Authenticate } from "../authenticate.js";

export function messagingHandlers(
  messaging: MessagingService,
  authenticate: Authenticate,
  session: DeviceSessionOptions,
  sessions: SessionRegistry,
): ServiceImpl<typeof MessagingServiceDesc> {
  return {
    async *stream(requests, context) {
      const principal = await authenticate(context);
      // Registered before the session reads the store, so a message committed after that read is
      // routed to this gateway, and one committed before it is in what the session reads.
      await sessions.register(principal.userId, principal.deviceId);
      try {
        yield* runDeviceSession(session, principal, requests, context.signal);
      } finally {
        await sessions.unregister(principal.userId, principal.deviceId);
      }
    },
    async sendMessage(request, context) {
      return messaging.send(await authenticate(context), request);
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
