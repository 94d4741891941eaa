import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MessageKind, type MessageSchema, type SystemEventSchema } from "../../gen/chat/v1/types_pb.js";
import type { MessageKindName, StoredMessage } from "../ports/index.js";

export type MessageView = MessageInitShape<typeof MessageSchema>;

const KINDS: Record<MessageKindName, MessageKind> = {
  text: MessageKind.TEXT,
  system: MessageKind.SYSTEM,
  tombstone: MessageKind.TOMBSTONE,
};

/**
 * One view object per stored message, shared by every device it goes to, so a fan-out does not
 * rebuild it per recipient.
 */
const views = new WeakMap<StoredMessage, MessageView>();

export function toMessageView(message: StoredMessage): MessageView {
  let view = views.get(message);
  if (!view) {
    view = {
      messageId: message.messageId,
      conversationId: message.conversationId,
      seq: message.seq,
      senderUserId: message.senderUserId,
      senderDeviceId: message.senderDeviceId,
      clientMsgId: message.clientMsgId,
      kind: KINDS[message.kind],
      text: message.text,
      sentAt: timestampFromDate(message.sentAt),
      system: message.systemJson ? (JSON.parse(message.systemJson) as MessageInitShape<typeof SystemEventSchema>) : undefined,
      attachments: (message.attachments ?? []).map((ref) => ({
        attachmentId: ref.attachmentId,
        contentType: ref.contentType,
        sizeBytes: BigInt(ref.size),
        fileName: ref.fileName,
      })),
    };
    views.set(message, view);
  }
  return view;
}
