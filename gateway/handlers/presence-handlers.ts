import type { ServiceImpl } from "@connectrpc/connect";
import type { PresenceService as PresenceServiceDesc } from "../../gen/chat/v1/presence_pb.js";
import type { PresenceService } from "../../services/presence/index.js";
import type { Authenticate } from "../authenticate.js";

export function presenceHandlers(presence: PresenceService, authenticate: Authenticate): ServiceImpl<typeof PresenceServiceDesc> {
  return {
    async getPresence(request, context) {
      await authenticate(context);
      return { presences: await presence.getPresence(request.userIds) };
    },
  };
}
