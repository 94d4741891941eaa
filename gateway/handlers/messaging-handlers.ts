import type { ServiceImpl } from "@connectrpc/connect";
import type { MessagingService as MessagingServiceDesc } from "../../gen/chat/v1/messaging_pb.js";
import { runDeviceSession, type DeviceSessionOptions, type MessagingService } from "../../services/messaging/index.js";
import type { Authenticate } from "../authenticate.js";

export function messagingHandlers(
  messaging: MessagingService,
  authenticate: Authenticate,
  session: DeviceSessionOptions,
): ServiceImpl<typeof MessagingServiceDesc> {
  return {
    async *stream(requests, context) {
      const principal = await authenticate(context);
      yield* runDeviceSession(session, principal, requests, context.signal);
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
