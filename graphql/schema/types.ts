import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ConversationKind,
  ConversationSchema,
  MessageKind,
  MessageSchema,
  SystemEventKind,
  UserSchema,
  type Attachment,
  type Conversation,
  type Message,
  type SystemEvent,
  type User,
} from "../../gen/chat/v1/types_pb.js";
import { MAX_ATTACHMENTS_PER_MESSAGE } from "../../services/attachments/index.js";
import { listSize, type Builder, type ChatSchemaTypes } from "../builder.js";
import { registerPageInfo } from "./connections.js";
import { messageKey, toGlobalId, type NodeTypeName } from "./node.js";
import { registerUserError } from "./payloads.js";

type Types = PothosSchemaTypes.ExtendDefaultTypes<ChatSchemaTypes>;
export type EnumRef<E> = PothosSchemaTypes.EnumRef<Types, E, E>;

/**
 * A protobuf enum as a GraphQL enum: the names without their proto prefix, UNSPECIFIED left out (the
 * services never send it). Every value is described.
 */
export function protoEnum<E extends number>(
  builder: Builder,
  name: string,
  source: Record<string, string | number>,
  description: string,
  valueDescriptions: Readonly<Record<string, string>>,
): EnumRef<E> {
  const values: Record<string, { value: number; description: string }> = {};
  for (const [key, value] of Object.entries(source)) {
    if (typeof value !== "number" || value === 0) continue;
    const valueDescription = valueDescriptions[key];
    if (!valueDescription) throw new Error(`${name}.${key} has no description`);
    values[key] = { value, description: valueDescription };
  }
  return builder.enumType(name, { description, values }) as unknown as EnumRef<E>;
}

// Services answer with protobuf init shapes (every field optional); `create` fills the defaults, so
// GraphQL serializes exactly what a Connect client decodes.
export const toMessage = (view: MessageInitShape<typeof MessageSchema>): Message => create(MessageSchema, view);
export const toConversation = (view: MessageInitShape<typeof ConversationSchema>): Conversation => create(ConversationSchema, view);
export const toUser = (view: MessageInitShape<typeof UserSchema>): User => create(UserSchema, view);

/** Proto3 has no null for strings: the services send "" for "none", GraphQL says null. */
export const orNull = (value: string): string | null => (value === "" ? null : value);

const NODE_TYPE_OF: Readonly<Record<string, NodeTypeName>> = {
  "chat.v1.User": "User",
  "chat.v1.Conversation": "Conversation",
  "chat.v1.Group": "Group",
  "chat.v1.Message": "Message",
};

/** The object types several modules return. */
export function registerSharedTypes(builder: Builder) {
  const node = builder.interfaceRef<{ $typeName: string }>("Node").implement({
    description: "An object with a global id, which `node(id:)` fetches again (the Relay object identification specification).",
    resolveType: (value) => NODE_TYPE_OF[value.$typeName] ?? null,
    fields: (t) => ({
      id: t.id({ description: "A global id: opaque, unique across types. Pass it to `node(id:)`.", resolve: () => "" }),
    }),
  });

  const conversationKind = protoEnum<ConversationKind>(builder, "ConversationKind", ConversationKind, "What kind of conversation.", {
    DIRECT: "Two users; opened by sending to a user id.",
    GROUP: "A named group with roles.",
  });
  const messageKind = protoEnum<MessageKind>(builder, "MessageKind", MessageKind, "What a message is.", {
    TEXT: "Written by a user.",
    SYSTEM: "A change to the conversation (see `system`), with its own seq.",
    TOMBSTONE: "A deleted message: it keeps its seq so the order has no hole.",
  });
  const systemEventKind = protoEnum<SystemEventKind>(builder, "SystemEventKind", SystemEventKind, "What changed in a group.", {
    GROUP_CREATED: "The group was created (`title`: its name; `targetUserIds`: its first members).",
    MEMBERS_ADDED: "`targetUserIds` were added.",
    MEMBER_REMOVED: "`targetUserIds` (one user) was removed by `actorUserId`.",
    MEMBER_LEFT: "`actorUserId` left.",
    GROUP_RENAMED: "The group was renamed to `title`.",
    ROLE_CHANGED: "The role of `targetUserIds` (one user) changed.",
  });

  const user = builder.objectRef<User>("User").implement({
    description: "A user's public profile.",
    interfaces: [node],
    isTypeOf: (value) => (value as { $typeName?: string }).$typeName === "chat.v1.User",
    fields: (t) => ({
      id: t.id({ description: "The global id (Node).", resolve: (u) => toGlobalId("User", u.userId) }),
      userId: t.exposeID("userId", { description: "The user id every other argument and field uses (`userIds`, `senderUserId`, ...)." }),
      username: t.exposeString("username", { description: "Unique, lower-case: a-z, 0-9, '_', '.', '-'." }),
      displayName: t.string({ nullable: true, description: "The name to show; null if the user set none.", resolve: (u) => orNull(u.displayName) }),
      createdAt: t.expose("createdAt", { type: "DateTime", nullable: true, description: "When the account was created." }),
    }),
  });

  const systemEvent = builder.objectRef<SystemEvent>("SystemEvent").implement({
    description: "The change a SYSTEM message records.",
    fields: (t) => ({
      kind: t.expose("kind", { type: systemEventKind, description: "What changed." }),
      actorUserId: t.exposeID("actorUserId", { description: "Who made the change." }),
      targetUserIds: t.exposeIDList("targetUserIds", { description: "Whom it concerns (added, removed, ...)." }),
      title: t.string({ nullable: true, description: "The group name, for GROUP_CREATED and GROUP_RENAMED; null otherwise.", resolve: (e) => orNull(e.title) }),
    }),
  });

  const attachment = builder.objectRef<Attachment>("Attachment").implement({
    description: "A file sent with a message. Fetch it with `createDownload` (a short-lived URL).",
    fields: (t) => ({
      attachmentId: t.exposeID("attachmentId", { description: "Pass to `createDownload`." }),
      contentType: t.exposeString("contentType", { description: "Its media type, e.g. \"image/png\"." }),
      sizeBytes: t.expose("sizeBytes", { type: "UInt64", description: "Its exact size." }),
      fileName: t.string({ nullable: true, description: "The name the sender gave it; null if none.", resolve: (a) => orNull(a.fileName) }),
    }),
  });

  const message = builder.objectRef<Message>("Message").implement({
    description: "One message of a conversation. `(conversationId, seq)` identifies it as well as `messageId` does.",
    interfaces: [node],
    isTypeOf: (value) => (value as { $typeName?: string }).$typeName === "chat.v1.Message",
    fields: (t) => ({
      id: t.id({ description: "The global id (Node).", resolve: (m) => toGlobalId("Message", messageKey(m.conversationId, m.seq)) }),
      messageId: t.exposeID("messageId", { description: "The message's own id." }),
      conversationId: t.exposeID("conversationId", { description: "The conversation it belongs to." }),
      seq: t.expose("seq", {
        type: "UInt64",
        description: "The message's place in its conversation: 1, 2, 3, ... with no gap, the same for every member.",
      }),
      senderUserId: t.exposeID("senderUserId", { description: "Who sent it (for SYSTEM messages: who made the change)." }),
      senderDeviceId: t.id({ nullable: true, description: "The device it was sent from; null for SYSTEM messages.", resolve: (m) => orNull(m.senderDeviceId) }),
      clientMsgId: t.exposeString("clientMsgId", { description: "The sender's idempotency key." }),
      kind: t.expose("kind", { type: messageKind, description: "Written text, a change of the group, or a deleted message." }),
      text: t.exposeString("text", { description: "The text; empty for a message of attachments only." }),
      sentAt: t.expose("sentAt", { type: "DateTime", nullable: true, description: "When the server stored it." }),
      system: t.expose("system", { type: systemEvent, nullable: true, description: "Set on SYSTEM messages." }),
      attachments: t.field({
        type: [attachment],
        description: `Files sent with it, in the order given (at most ${MAX_ATTACHMENTS_PER_MESSAGE}).`,
        // Counted as one: most messages carry none and the objects are flat; at the bound (10) a page
        // of 200 messages would cost more than the whole limit.
        extensions: listSize({ defaultSize: 1, maxSize: MAX_ATTACHMENTS_PER_MESSAGE }),
        resolve: (m) => m.attachments,
      }),
    }),
  });

  const conversation = builder.objectRef<Conversation>("Conversation").implement({
    description: "A direct conversation or a group's conversation.",
    interfaces: [node],
    isTypeOf: (value) => (value as { $typeName?: string }).$typeName === "chat.v1.Conversation",
    fields: (t) => ({
      id: t.id({ description: "The global id (Node).", resolve: (c) => toGlobalId("Conversation", c.conversationId) }),
      conversationId: t.exposeID("conversationId", { description: "The id every `conversationId` argument takes (for a group: also its `groupId`)." }),
      kind: t.expose("kind", { type: conversationKind, description: "Direct or group." }),
      title: t.string({ nullable: true, description: "A group's name; null for a direct conversation.", resolve: (c) => orNull(c.title) }),
      lastSeq: t.expose("lastSeq", {
        type: "UInt64",
        description: "The last seq you can see (for a former member: the event that removed them).",
      }),
      createdAt: t.expose("createdAt", { type: "DateTime", nullable: true, description: "When it was opened." }),
      memberUserIds: t.exposeIDList("memberUserIds", {
        description: "The two members of a direct conversation; empty for groups (use `group(groupId:)` for members and roles).",
      }),
    }),
  });

  const conversationCursor = builder.objectRef<{ conversationId: string; seq: bigint }>("ConversationCursor").implement({
    description: "A position in one conversation: the last seq received (or, in `heads`, the last seq there is).",
    fields: (t) => ({
      conversationId: t.exposeID("conversationId", { description: "The conversation." }),
      seq: t.expose("seq", { type: "UInt64", description: "The seq." }),
    }),
  });

  const conversationCursorInput = builder.inputType("ConversationCursorInput", {
    description: "The last seq you received in one conversation.",
    fields: (t) => ({
      conversationId: t.id({ required: true, description: "The conversation." }),
      seq: t.field({ type: "UInt64", required: true, description: "The last seq you received there." }),
    }),
  });

  const pageInfo = registerPageInfo(builder);
  const userError = registerUserError(builder);

  return { node, user, message, attachment, conversation, systemEvent, conversationCursor, conversationCursorInput, pageInfo, userError };
}

export type SharedTypes = ReturnType<typeof registerSharedTypes>;
