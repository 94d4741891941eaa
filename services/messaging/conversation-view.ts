import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationKind, type ConversationSchema } from "../../gen/chat/v1/types_pb.js";
import type { ConversationRecord } from "../ports/index.js";

export type ConversationView = MessageInitShape<typeof ConversationSchema>;

export function toConversationView(record: ConversationRecord, memberUserIds: readonly string[], lastSeq = record.lastSeq): ConversationView {
  return {
    conversationId: record.conversationId,
    kind: record.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP,
    lastSeq,
    createdAt: timestampFromDate(record.createdAt),
    memberUserIds: [...memberUserIds],
    title: record.title,
  };
}
