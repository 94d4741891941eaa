import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConversationKind, ConversationSchema, MessageKind, MessageSchema, SystemEventKind, UserSchema, type Conversation, type Message, type SystemEvent, type User } from "../../gen/chat/v1/types_pb.js";
import type { Builder, ChatSchemaTypes } from "../builder.js";

type Types = PothosSchemaTypes.ExtendDefaultTypes<ChatSchemaTypes>;
export type EnumRef<E> = PothosSchemaTypes.EnumRef<Types, E, E>;

/**
 * A protobuf enum as a GraphQL enum: the names without their proto prefix, UNSPECIFIED left out (the
 * services never send it).
 */
export function protoEnum<E extends number>(
  builder: Builder,
  name: string,
  source: Record<string, string | number>,
  description: string,
  valueDescriptions: Readonly<Record<string, string>> = {},
): EnumRef<E> {
  const values: Record<string, { value: number; description?: string }> = {};
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === "number" && value !== 0) values[key] = { value, ...(valueDescriptions[key] ? { description: valueDescriptions[key] } : {}) };
  }
  return builder.enumType(name, { description, values }) as unknown as EnumRef<E>;
}

// Services answer with protobuf init shapes (every field optional); `create` fills the defaults, so
// GraphQL serializes exactly what a Connect client decodes.
export const toMessage = (view: MessageInitShape<typeof MessageSchema>): Message => create(MessageSchema, view);
export const toConversation = (view: MessageInitShape<typeof ConversationSchema>): Conversation => create(ConversationSchema, view);
export const toUser = (view: MessageInitShape<typeof UserSchema>): User => create(UserSchema, view);

/** The object types several modules return. */
export function registerSharedTypes(builder: Builder) {
  const conversationKind = protoEnum<ConversationKind>(builder, "ConversationKind", ConversationKind, "What kind of conversation.", {
    DIRECT: "Two users; opened by sending to a user id.",
    GROUP: "A named group with roles.",
  });
  const messageKind = protoEnum<MessageKind>(builder, "MessageKind", MessageKind, "What a message is.", {
    TEXT: "Written by a user.",
    SYSTEM: "A change to the conversation (see `system`), with its own seq.",
    TOMBSTONE: "A deleted message: it keeps its seq so the order has no hole.",
  });
  const systemEventKind = protoEnum<SystemEventKind>(builder, "SystemEventKind", SystemEventKind, "What changed in a group.");

  const user = builder.objectRef<User>("User").implement({
    description: "A user's public profile.",
    fields: (t) => ({
      id: t.exposeID("userId"),
      username: t.exposeString("username"),
      displayName: t.exposeString("displayName"),
      createdAt: t.expose("createdAt", { type: "DateTime", nullable: true }),
    }),
  });

  const systemEvent = builder.objectRef<SystemEvent>("SystemEvent").implement({
    description: "The change a SYSTEM message records.",
    fields: (t) => ({
      kind: t.expose("kind", { type: systemEventKind }),
      actorUserId: t.exposeID("actorUserId", { description: "Who made the change." }),
      targetUserIds: t.exposeIDList("targetUserIds", { description: "Whom it concerns (added, removed, ...)." }),
      title: t.exposeString("title", { description: "The group name, for GROUP_CREATED and GROUP_RENAMED." }),
    }),
  });

  const message = builder.objectRef<Message>("Message").implement({
    description: "One message of a conversation. `(conversationId, seq)` identifies it as well as `id` does.",
    fields: (t) => ({
      id: t.exposeID("messageId"),
      conversationId: t.exposeID("conversationId"),
      seq: t.expose("seq", {
        type: "UInt64",
        description: "The message's place in its conversation: 1, 2, 3, ... with no gap, the same for every member.",
      }),
      senderUserId: t.exposeID("senderUserId"),
      senderDeviceId: t.exposeID("senderDeviceId"),
      clientMsgId: t.exposeString("clientMsgId", { description: "The sender's idempotency key." }),
      kind: t.expose("kind", { type: messageKind }),
      text: t.exposeString("text"),
      sentAt: t.expose("sentAt", { type: "DateTime", nullable: true }),
      system: t.expose("system", { type: systemEvent, nullable: true, description: "Set on SYSTEM messages." }),
    }),
  });

  const conversation = builder.objectRef<Conversation>("Conversation").implement({
    description: "A direct conversation or a group's conversation.",
    fields: (t) => ({
      id: t.exposeID("conversationId"),
      kind: t.expose("kind", { type: conversationKind }),
      title: t.exposeString("title", { description: "A group's name; empty for a direct conversation." }),
      lastSeq: t.expose("lastSeq", {
        type: "UInt64",
        description: "The last seq you can see (for a former member: the event that removed them).",
      }),
      createdAt: t.expose("createdAt", { type: "DateTime", nullable: true }),
      memberUserIds: t.exposeIDList("memberUserIds", {
        description: "The two members of a direct conversation; empty for groups (use `group(id)` for members and roles).",
      }),
    }),
  });

  const conversationCursor = builder.objectRef<{ conversationId: string; seq: bigint }>("ConversationCursor").implement({
    description: "A position in one conversation: the last seq received (or, in `heads`, the last seq there is).",
    fields: (t) => ({
      conversationId: t.exposeID("conversationId"),
      seq: t.expose("seq", { type: "UInt64" }),
    }),
  });

  const conversationCursorInput = builder.inputType("ConversationCursorInput", {
    description: "The last seq you received in one conversation.",
    fields: (t) => ({
      conversationId: t.id({ required: true }),
      seq: t.field({ type: "UInt64", required: true }),
    }),
  });

  const pageInfo = builder
    .objectRef<{ hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }>("PageInfo")
    .implement({
      description: "Relay-style paging state.",
      fields: (t) => ({
        hasNextPage: t.exposeBoolean("hasNextPage"),
        hasPreviousPage: t.exposeBoolean("hasPreviousPage"),
        startCursor: t.exposeString("startCursor", { nullable: true }),
        endCursor: t.exposeString("endCursor", { nullable: true }),
      }),
    });

  return { user, message, conversation, systemEvent, conversationCursor, conversationCursorInput, pageInfo };
}

export type SharedTypes = ReturnType<typeof registerSharedTypes>;
