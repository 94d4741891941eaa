import type { ServiceImpl } from "@connectrpc/connect";
import type { PushService as PushServiceDesc } from "../../gen/chat/v1/push_pb.js";
import type { PushService } from "../../services/push/index.js";
import type { Authenticate } from "../authenticate.js";

export function pushHandlers(push: PushService, authenticate: Authenticate): ServiceImpl<typeof PushServiceDesc> {
  return {
    async registerPushTarget(request, context) {
      await push.registerTarget(await authenticate(context), request.target);
      return {};
    },
    async unregisterPushTarget(_request, context) {
      await push.unregisterTarget(await authenticate(context));
      return {};
    },
    async setConversationMuted(request, context) {
      await push.setMuted(await authenticate(context), request.conversationId, request.muted);
      return {};
    },
    async setPushPreviews(request, context) {
      await push.setPreviews(await authenticate(context), request.enabled);
      return {};
    },
    async getPushSettings(_request, context) {
      return push.settings(await authenticate(context));
    },
  };
}
