import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AttachmentsService as AttachmentsServiceDesc } from "../../gen/chat/v1/attachments_pb.js";
import type { AttachmentsService } from "../../services/attachments/index.js";
import type { Authenticate } from "../authenticate.js";

export function attachmentsHandlers(attachments: AttachmentsService, authenticate: Authenticate): ServiceImpl<typeof AttachmentsServiceDesc> {
  return {
    async createUpload(request, context) {
      const upload = await attachments.createUpload(await authenticate(context), request);
      return { ...upload, expiresAt: timestampFromDate(upload.expiresAt) };
    },
    async createDownload(request, context) {
      const download = await attachments.createDownload(await authenticate(context), request.attachmentId);
      return { ...download, expiresAt: timestampFromDate(download.expiresAt) };
    },
  };
}
