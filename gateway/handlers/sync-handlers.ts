import type { ServiceImpl } from "@connectrpc/connect";
import type { SyncService as SyncServiceDesc } from "../../gen/chat/v1/sync_pb.js";
import type { SyncService } from "../../services/sync/index.js";
import type { Authenticate } from "../authenticate.js";

export function syncHandlers(sync: SyncService, authenticate: Authenticate): ServiceImpl<typeof SyncServiceDesc> {
  return {
    async getInbox(request, context) {
      return sync.getInbox(await authenticate(context), request);
    },
    async markRead(request, context) {
      return { readSeq: await sync.markRead(await authenticate(context), request.conversationId, request.seq) };
    },
    async getMessageReaders(request, context) {
      return { readers: await sync.getMessageReaders(await authenticate(context), request.conversationId, request.seq) };
    },
  };
}
