import type { Principal } from "../accounts/index.js";
import { ErrorReason, invalidArgument, notFound, permissionDenied, requireId } from "../errors.js";
import { newId } from "../lib/ids.js";
import type { AttachmentRef, BlobInfo, BlobStore, ConversationStore } from "../ports/index.js";

export const MAX_ATTACHMENTS_PER_MESSAGE = 10;
const MAX_FILE_NAME = 255;
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

// What a blob's metadata records (signed into its upload URL, kept by the blob store).
const META_CONVERSATION = "conversation";
const META_UPLOADER = "uploader";
const META_FILE_NAME = "file-name";

export interface AttachmentsServiceOptions {
  readonly blobs: BlobStore;
  readonly conversations: ConversationStore;
  readonly maxBytes: number;
  /** Exact types (`image/png`) or whole families (`image/*`). */
  readonly allowedContentTypes: readonly string[];
  readonly uploadUrlTtlMs: number;
  readonly downloadUrlTtlMs: number;
  readonly now?: () => Date;
}

export interface CreateUploadInput {
  readonly conversationId: string;
  readonly contentType: string;
  readonly sizeBytes: bigint;
  readonly fileName: string;
}

export type AttachmentsService = ReturnType<typeof createAttachmentsService>;

/** Attachments are checked by whoever refers to them: a message may only carry the sender's own uploads to that conversation. */
export interface AttachmentResolver {
  resolve(principal: Principal, conversationId: string, attachmentIds: readonly string[]): Promise<AttachmentRef[]>;
}

export function isAllowedContentType(contentType: string, allowed: readonly string[]): boolean {
  const family = `${contentType.split("/", 1)[0]}/*`;
  return allowed.includes(contentType) || allowed.includes(family);
}

function refOf(info: BlobInfo): AttachmentRef {
  return {
    attachmentId: info.key,
    contentType: info.contentType,
    size: info.size,
    fileName: decodeURIComponent(info.metadata[META_FILE_NAME] ?? ""),
  };
}

/**
 * Pre-signed uploads and downloads. Nothing is recorded until the bytes arrive: everything the blob
 * store must know (conversation, uploader, name, type, exact size) is signed into the upload URL and
 * kept with the blob, so an unused URL leaves nothing behind.
 */
export function createAttachmentsService(options: AttachmentsServiceOptions) {
  const { blobs, conversations } = options;
  const now = options.now ?? (() => new Date());
  const notFoundError = (attachmentId: string) =>
    notFound(
      ErrorReason.ATTACHMENT_NOT_FOUND,
      `attachment "${attachmentId}" was not uploaded to this conversation by you (or its upload has not finished); upload it first`,
      "attachment_ids",
    );

  return {
    async createUpload(principal: Principal, input: CreateUploadInput) {
      requireId(input.conversationId, "conversation_id");
      if (!input.conversationId || !(await conversations.isMember(input.conversationId, principal.userId))) {
        throw permissionDenied(ErrorReason.NOT_A_MEMBER, "you are not a member of this conversation (or it does not exist)", "conversation_id");
      }
      const contentType = input.contentType.trim().toLowerCase();
      if (!CONTENT_TYPE.test(contentType) || !isAllowedContentType(contentType, options.allowedContentTypes)) {
        throw invalidArgument(
          ErrorReason.CONTENT_TYPE_NOT_ALLOWED,
          `content type "${input.contentType}" is not accepted; use one of: ${options.allowedContentTypes.join(", ")}`,
          "content_type",
          { allowed: options.allowedContentTypes.join(",") },
        );
      }
      if (input.sizeBytes < 1n) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "size_bytes must be the file's size, at least 1", "size_bytes");
      if (input.sizeBytes > BigInt(options.maxBytes)) {
        throw invalidArgument(ErrorReason.ATTACHMENT_TOO_LARGE, `the file is larger than ${options.maxBytes} bytes, the most this server accepts`, "size_bytes", {
          max: String(options.maxBytes),
        });
      }
      if ([...input.fileName].length > MAX_FILE_NAME || /[\u0000-\u001f\u007f/\\]/.test(input.fileName)) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `file_name must be at most ${MAX_FILE_NAME} characters, without control characters or slashes`, "file_name");
      }
      const at = now();
      const attachmentId = newId("a", at.getTime());
      const expiresAt = new Date(at.getTime() + options.uploadUrlTtlMs);
      const signed = await blobs.signUpload({
        key: attachmentId,
        contentType,
        size: Number(input.sizeBytes),
        expiresAt,
        metadata: {
          [META_CONVERSATION]: input.conversationId,
          [META_UPLOADER]: principal.userId,
          [META_FILE_NAME]: encodeURIComponent(input.fileName),
        },
      });
      return { attachmentId, uploadUrl: signed.url, expiresAt, headers: { ...signed.headers } };
    },

    /** Members, current and former, of the attachment's conversation may download it. */
    async createDownload(principal: Principal, attachmentId: string) {
      requireId(attachmentId, "attachment_id");
      const info = /^[A-Za-z0-9_-]{1,128}$/.test(attachmentId) ? await blobs.head(attachmentId) : undefined;
      const conversationId = info?.metadata[META_CONVERSATION];
      if (!info || !conversationId || !(await conversations.getMember(conversationId, principal.userId))) {
        throw notFound(ErrorReason.ATTACHMENT_NOT_FOUND, `attachment "${attachmentId}" does not exist or is not in a conversation of yours`, "attachment_id");
      }
      const expiresAt = new Date(now().getTime() + options.downloadUrlTtlMs);
      const ref = refOf(info);
      return { downloadUrl: await blobs.signDownload(attachmentId, expiresAt), expiresAt, contentType: ref.contentType, sizeBytes: BigInt(ref.size), fileName: ref.fileName };
    },

    async resolve(principal: Principal, conversationId: string, attachmentIds: readonly string[]): Promise<AttachmentRef[]> {
      if (attachmentIds.length > MAX_ATTACHMENTS_PER_MESSAGE) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `a message carries at most ${MAX_ATTACHMENTS_PER_MESSAGE} attachments`, "attachment_ids", {
          max: String(MAX_ATTACHMENTS_PER_MESSAGE),
        });
      }
      if (new Set(attachmentIds).size !== attachmentIds.length) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, "an attachment is listed twice in attachment_ids", "attachment_ids");
      }
      return Promise.all(
        attachmentIds.map(async (attachmentId) => {
          const info = /^[A-Za-z0-9_-]{1,128}$/.test(attachmentId) ? await blobs.head(attachmentId) : undefined;
          if (!info || info.metadata[META_CONVERSATION] !== conversationId || info.metadata[META_UPLOADER] !== principal.userId) {
            throw notFoundError(attachmentId);
          }
          return refOf(info);
        }),
      );
    },
  } satisfies AttachmentResolver & Record<string, unknown>;
}
