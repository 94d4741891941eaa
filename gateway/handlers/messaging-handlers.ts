import type { ServiceImpl } from "@connectrpc/connect";
import type { MessagingService as MessagingServiceDesc } from "../../gen/chat/v1/messaging_pb.js";
import type { MessagingService } from "../../services/messaging/index.js";
import type { Authenticate } from "../authenticate.js";
import { surfaceOf } from "../metrics.js";
import { requestIdOf } from "../request-id.js";
import { kResetStream } from "../stream-reset.js";
import { deviceStreamFrames, type DeviceStreamDeps } from "./device-stream.js";

export function messagingHandlers(
  messaging: MessagingService,
  authenticate: Authenticate,
  deviceStreams: DeviceStreamDeps,
): ServiceImpl<typeof MessagingServiceDesc> {
  return {
    stream(requests, context) {
      return deviceStreamFrames(deviceStreams, {
        authenticate: () => authenticate(context),
        requests,
        signal: context.signal,
        surface: surfaceOf(context.requestHeader.get("content-type")),
        handler: "router",
        streamId: requestIdOf(context.requestHeader),
        reset: context.values.get(kResetStream),
      });
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
