export { createAttachmentsService, isAllowedContentType, MAX_ATTACHMENTS_PER_MESSAGE } from "./attachments-service.js";
export type { AttachmentResolver, AttachmentsService, AttachmentsServiceOptions, CreateUploadInput } from "./attachments-service.js";
