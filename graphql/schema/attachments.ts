import type { Builder } from "../builder.js";
import { attempt, type Outcome } from "./payloads.js";
import type { SharedTypes } from "./types.js";

interface Upload {
  readonly attachmentId: string;
  readonly uploadUrl: string;
  readonly expiresAt: Date;
  readonly headers: Readonly<Record<string, string>>;
}

interface Download {
  readonly downloadUrl: string;
  readonly expiresAt: Date;
  readonly contentType: string;
  readonly sizeBytes: bigint;
  readonly fileName: string;
}

/**
 * Files: AttachmentsService. The bytes never pass through GraphQL: a client asks for a short-lived
 * signed URL, PUTs the file there, then sends a message with the attachment id.
 */
export function registerAttachments(builder: Builder, types: SharedTypes): void {
  const header = builder.objectRef<{ name: string; value: string }>("HttpHeader").implement({
    description: "An HTTP header to send with a request exactly as given.",
    fields: (t) => ({
      name: t.exposeString("name", { description: "The header's name." }),
      value: t.exposeString("value", { description: "Its value." }),
    }),
  });

  const upload = builder.objectRef<Upload>("AttachmentUpload").implement({
    description: "Where to PUT a file's bytes.",
    fields: (t) => ({
      attachmentId: t.exposeID("attachmentId", { description: "Give it in `sendMessage`'s `attachmentIds` once the PUT has succeeded." }),
      uploadUrl: t.exposeString("uploadUrl", { description: "PUT the bytes here before `expiresAt`." }),
      expiresAt: t.expose("expiresAt", { type: "DateTime", description: "When `uploadUrl` stops working." }),
      headers: t.field({
        type: [header],
        description: "Headers the PUT must carry exactly as given (Content-Type among them): they are part of the signature.",
        resolve: (u) => Object.entries(u.headers).map(([name, value]) => ({ name, value })),
      }),
    }),
  });

  const uploadInput = builder.inputType("CreateUploadInput", {
    description: "A file you are about to send.",
    fields: (t) => ({
      conversationId: t.id({ required: true, description: "The conversation it will be sent to; you must be a member." }),
      contentType: t.string({ required: true, description: "One of the server's allowed types (CHAT_UPLOAD_CONTENT_TYPES), e.g. \"image/png\"." }),
      sizeBytes: t.field({ type: "UInt64", required: true, description: "The exact size of the file; at most CHAT_UPLOAD_MAX_BYTES." }),
      fileName: t.string({ required: false, description: "At most 255 characters; shown to the other members." }),
    }),
  });

  const uploadPayload = builder.objectRef<Outcome<Upload>>("CreateUploadPayload").implement({
    description: "The upload ticket, or why not (CONTENT_TYPE_NOT_ALLOWED, ATTACHMENT_TOO_LARGE, NOT_A_MEMBER).",
    fields: (t) => ({
      upload: t.field({ type: upload, nullable: true, description: "Where to PUT the bytes.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("createUpload", (t) =>
    t.field({
      type: uploadPayload,
      description: "Asks for a signed URL to upload a file to; then PUT the bytes there and send a message with its `attachmentId`.",
      args: { input: t.arg({ type: uploadInput, required: true, description: "The file." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () =>
          ctx.services.attachments.createUpload(await ctx.principal(), {
            conversationId: String(input.conversationId),
            contentType: input.contentType,
            sizeBytes: input.sizeBytes,
            fileName: input.fileName ?? "",
          }),
        ),
    }),
  );

  const download = builder.objectRef<Download>("AttachmentDownload").implement({
    description: "Where to GET a file.",
    fields: (t) => ({
      downloadUrl: t.exposeString("downloadUrl", { description: "GET this before `expiresAt`." }),
      expiresAt: t.expose("expiresAt", { type: "DateTime", description: "When `downloadUrl` stops working." }),
      contentType: t.exposeString("contentType", { description: "The file's media type." }),
      sizeBytes: t.expose("sizeBytes", { type: "UInt64", description: "Its size." }),
      fileName: t.string({ nullable: true, description: "The name the sender gave it; null if none.", resolve: (d) => (d.fileName === "" ? null : d.fileName) }),
    }),
  });

  const downloadInput = builder.inputType("CreateDownloadInput", {
    description: "A file sent in one of your conversations.",
    fields: (t) => ({ attachmentId: t.id({ required: true, description: "From `Message.attachments`." }) }),
  });

  const downloadPayload = builder.objectRef<Outcome<Download>>("CreateDownloadPayload").implement({
    description: "The download ticket, or ATTACHMENT_NOT_FOUND.",
    fields: (t) => ({
      download: t.field({ type: download, nullable: true, description: "Where to GET the file.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Why it failed; empty on success.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("createDownload", (t) =>
    t.field({
      type: downloadPayload,
      description: "A short-lived URL to download an attachment of a conversation you are (or were) a member of.",
      args: { input: t.arg({ type: downloadInput, required: true, description: "The attachment." }) },
      resolve: (_root, { input }, ctx) => attempt(async () => ctx.services.attachments.createDownload(await ctx.principal(), String(input.attachmentId))),
    }),
  );
}
