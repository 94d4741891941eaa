import type { AttachmentRef, NewMessage, StoredMessage } from "../../services/ports/index.js";

// Both builders list the fields one by one (no spread) so extra properties of the caller's object
// never leak into what is acked, and a fresh append deep-equals a later read of the same message:
// `systemJson` is present only when non-empty, in both.
export function storedFromNew(message: NewMessage, seq: bigint): StoredMessage {
  const stored = {
    messageId: message.messageId,
    conversationId: message.conversationId,
    seq,
    senderUserId: message.senderUserId,
    senderDeviceId: message.senderDeviceId,
    clientMsgId: message.clientMsgId,
    kind: message.kind,
    text: message.text,
    sentAt: new Date(message.sentAt.getTime()),
  };
  return withOptional(stored, message.systemJson, message.attachments?.length ? message.attachments.map(copyAttachment) : undefined);
}

function copyAttachment(ref: AttachmentRef): AttachmentRef {
  return { attachmentId: ref.attachmentId, contentType: ref.contentType, size: ref.size, fileName: ref.fileName };
}

// The optional fields are present only when non-empty, on both paths, so the two deep-equal.
export function withOptional(stored: StoredMessage, systemJson: string | undefined, attachments: AttachmentRef[] | undefined): StoredMessage {
  let result = stored;
  if (systemJson) result = { ...result, systemJson };
  if (attachments) result = { ...result, attachments };
  return result;
}
