/**
 * Where each part of the Connect API (proto/chat/v1) is in the GraphQL schema, or why it is not.
 * test/graphql-conventions.test.ts reads the proto descriptors and the built schema and fails on an
 * RPC or a message field that is in neither this table nor the rule below, and on a counterpart
 * that does not exist, so a new RPC or field cannot ship without a GraphQL answer.
 *
 * A counterpart is `Type.field` (an object, interface or input field) or `Type.field(argument)`.
 * A message listed with `type` maps its fields by name (`sender_user_id` to `Type.senderUserId`);
 * with `args`, to that field's arguments. `fields` overrides either, field by field.
 */
export type Counterpart = string | { readonly reason: string };

export interface MessageParity {
  readonly type?: string;
  readonly args?: string;
  readonly fields?: Readonly<Record<string, Counterpart>>;
}

const noFields: MessageParity = { fields: {} };
const sessionOnly: MessageParity = { fields: { session: "SignUpPayload.session" } };

export const RPCS: Readonly<Record<string, Counterpart>> = {
  "chat.v1.AccountsService.SignUp": "Mutation.signUp",
  "chat.v1.AccountsService.LogIn": "Mutation.logIn",
  "chat.v1.AccountsService.Refresh": "Mutation.refreshSession",
  "chat.v1.AccountsService.LogOut": "Mutation.logOut",
  "chat.v1.AccountsService.GetMe": "Query.me",
  "chat.v1.AccountsService.LookupUsers": "Query.users",
  "chat.v1.AttachmentsService.CreateUpload": "Mutation.createUpload",
  "chat.v1.AttachmentsService.CreateDownload": "Mutation.createDownload",
  "chat.v1.GroupsService.CreateGroup": "Mutation.createGroup",
  "chat.v1.GroupsService.AddMembers": "Mutation.addGroupMembers",
  "chat.v1.GroupsService.RemoveMember": "Mutation.removeGroupMember",
  "chat.v1.GroupsService.LeaveGroup": "Mutation.leaveGroup",
  "chat.v1.GroupsService.RenameGroup": "Mutation.renameGroup",
  "chat.v1.GroupsService.SetMemberRole": "Mutation.setGroupMemberRole",
  "chat.v1.GroupsService.GetGroup": "Query.group",
  "chat.v1.GroupsService.ListMyGroups": "Query.myGroups",
  "chat.v1.MessagingService.Stream": "Subscription.messages",
  "chat.v1.MessagingService.SendMessage": "Mutation.sendMessage",
  "chat.v1.MessagingService.GetHistory": "Query.messages",
  "chat.v1.MessagingService.OpenDirectConversation": "Mutation.openDirectConversation",
  "chat.v1.MessagingService.GetConversation": "Query.conversation",
  "chat.v1.PresenceService.GetPresence": "Query.presence",
  "chat.v1.PushService.RegisterPushTarget": "Mutation.registerPushTarget",
  "chat.v1.PushService.UnregisterPushTarget": "Mutation.unregisterPushTarget",
  "chat.v1.PushService.SetConversationMuted": "Mutation.setConversationMuted",
  "chat.v1.PushService.SetPushPreviews": "Mutation.setPushPreviews",
  "chat.v1.PushService.GetPushSettings": "Query.pushSettings",
  "chat.v1.SyncService.GetInbox": "Query.inbox",
  "chat.v1.SyncService.MarkRead": "Mutation.markRead",
  "chat.v1.SyncService.GetMessageReaders": "Query.messageReaders",
};

export const MESSAGES: Readonly<Record<string, MessageParity>> = {
  // Shared types.
  "chat.v1.User": { type: "User" },
  "chat.v1.Conversation": { type: "Conversation" },
  "chat.v1.SystemEvent": { type: "SystemEvent" },
  "chat.v1.Message": { type: "Message" },
  "chat.v1.Attachment": { type: "Attachment" },
  "chat.v1.ConversationCursor": { type: "ConversationCursor" },
  "chat.v1.ErrorDetail": {
    fields: {
      reason: "UserError.code",
      field: "UserError.field",
      metadata: { reason: "errors[].extensions.metadata of a top-level error (graphql/errors.ts); a user error needs none" },
    },
  },
  "chat.v1.Status": {
    fields: {
      code: { reason: "errors[].extensions.grpcCode" },
      reason: "UserError.code",
      message: "UserError.message",
      field: "UserError.field",
    },
  },

  // AccountsService.
  "chat.v1.Session": { type: "Session" },
  "chat.v1.SignUpRequest": { type: "SignUpInput" },
  "chat.v1.SignUpResponse": sessionOnly,
  "chat.v1.LogInRequest": { type: "LogInInput" },
  "chat.v1.LogInResponse": { fields: { session: "LogInPayload.session" } },
  "chat.v1.RefreshRequest": { type: "RefreshSessionInput" },
  "chat.v1.RefreshResponse": { fields: { session: "RefreshSessionPayload.session" } },
  "chat.v1.LogOutRequest": noFields,
  "chat.v1.LogOutResponse": noFields,
  "chat.v1.GetMeRequest": noFields,
  "chat.v1.GetMeResponse": { type: "Me" },
  "chat.v1.LookupUsersRequest": { args: "Query.users" },
  "chat.v1.LookupUsersResponse": { fields: { users: "UserConnection.nodes" } },

  // AttachmentsService.
  "chat.v1.CreateUploadRequest": { type: "CreateUploadInput" },
  "chat.v1.CreateUploadResponse": { type: "AttachmentUpload" },
  "chat.v1.CreateDownloadRequest": { type: "CreateDownloadInput" },
  "chat.v1.CreateDownloadResponse": { type: "AttachmentDownload" },

  // GroupsService.
  "chat.v1.GroupMember": { type: "GroupMember" },
  "chat.v1.Group": { type: "Group" },
  "chat.v1.CreateGroupRequest": { type: "CreateGroupInput" },
  "chat.v1.CreateGroupResponse": { fields: { group: "CreateGroupPayload.group" } },
  "chat.v1.AddMembersRequest": { type: "AddGroupMembersInput" },
  "chat.v1.AddMembersResponse": { fields: { group: "AddGroupMembersPayload.group" } },
  "chat.v1.RemoveMemberRequest": { type: "RemoveGroupMemberInput" },
  "chat.v1.RemoveMemberResponse": { fields: { group: "RemoveGroupMemberPayload.group" } },
  "chat.v1.LeaveGroupRequest": { type: "LeaveGroupInput" },
  "chat.v1.LeaveGroupResponse": noFields,
  "chat.v1.RenameGroupRequest": { type: "RenameGroupInput" },
  "chat.v1.RenameGroupResponse": { fields: { group: "RenameGroupPayload.group" } },
  "chat.v1.SetMemberRoleRequest": { type: "SetGroupMemberRoleInput" },
  "chat.v1.SetMemberRoleResponse": { fields: { group: "SetGroupMemberRolePayload.group" } },
  "chat.v1.GetGroupRequest": { args: "Query.group" },
  "chat.v1.GetGroupResponse": { fields: { group: "Query.group" } },
  "chat.v1.ListMyGroupsRequest": noFields,
  "chat.v1.ListMyGroupsResponse": { fields: { groups: "GroupConnection.nodes" } },

  // MessagingService.
  "chat.v1.SendMessageRequest": { type: "SendMessageInput" },
  "chat.v1.SendMessageResponse": { type: "SendMessagePayload" },
  "chat.v1.GetHistoryRequest": {
    args: "Query.messages",
    fields: { before_seq: "Query.messages(before)", after_seq: "Query.messages(after)", limit: "Query.messages(first)" },
  },
  "chat.v1.GetHistoryResponse": { fields: { messages: "MessageConnection.nodes", has_more: "PageInfo.hasNextPage" } },
  "chat.v1.OpenDirectConversationRequest": { type: "OpenDirectConversationInput" },
  "chat.v1.OpenDirectConversationResponse": { type: "OpenDirectConversationPayload" },
  "chat.v1.GetConversationRequest": { args: "Query.conversation" },
  "chat.v1.GetConversationResponse": { fields: { conversation: "Query.conversation" } },
  "chat.v1.StreamRequest": {
    fields: {
      hello: "Subscription.messages(resume)",
      send: "Mutation.sendMessage",
      delivered: "Mutation.markDelivered",
      read: "Mutation.markRead",
      typing: "Mutation.setTyping",
      heartbeat: { reason: "the server heartbeats each subscription itself (graphql/live-feed.ts); graphql-ws pings keep the socket alive" },
      watch_presence: "Subscription.presence(userIds)",
    },
  },
  "chat.v1.StreamRequest.Hello": {
    fields: { resume: "Subscription.messages(resume)", client_version: { reason: "a GraphQL client is told apart by its User-Agent, not a frame" } },
  },
  "chat.v1.StreamRequest.Resume": { fields: { cursors: "Subscription.messages(resume)" } },
  "chat.v1.StreamRequest.Delivered": { type: "MarkDeliveredInput" },
  "chat.v1.StreamRequest.Read": { type: "MarkReadInput" },
  "chat.v1.StreamRequest.Typing": { type: "SetTypingInput" },
  "chat.v1.StreamRequest.Heartbeat": noFields,
  "chat.v1.StreamRequest.WatchPresence": { args: "Subscription.presence" },
  "chat.v1.StreamResponse": {
    fields: {
      ready: "MessageFeedEvent.heads",
      message: "MessageFeedEvent.message",
      caught_up: "MessageFeedEvent.kind",
      ack: "Mutation.sendMessage",
      rejected: "SendMessagePayload.userErrors",
      receipt: "Subscription.receipts",
      typing: "Subscription.typing",
      presence: "Subscription.presence",
      conversation: "Subscription.conversationChanges",
      heartbeat_ack: { reason: "no client heartbeat to acknowledge (see StreamRequest.heartbeat)" },
      go_away: "MessageFeedEvent.reconnectAfterMs",
    },
  },
  "chat.v1.StreamResponse.Ready": {
    fields: {
      user_id: "Me.user",
      device_id: "Me.deviceId",
      heads: "MessageFeedEvent.heads",
      heartbeat_interval_ms: { reason: "the server sends each subscription's heartbeats itself" },
      server_time: { reason: "every DateTime is the server's clock; a client compares with `sentAt` of a message it just sent" },
    },
  },
  "chat.v1.StreamResponse.CaughtUp": noFields,
  "chat.v1.StreamResponse.Rejected": {
    fields: {
      client_msg_id: "SendMessageInput.clientMsgId",
      status: "SendMessagePayload.userErrors",
      frame: { reason: "a mutation's errors belong to that mutation: no frame to name" },
    },
  },
  "chat.v1.StreamResponse.HeartbeatAck": noFields,
  "chat.v1.StreamResponse.GoAway": {
    fields: { reason: "MessageFeedEvent.kind", reconnect_after_ms: "MessageFeedEvent.reconnectAfterMs" },
  },
  "chat.v1.Receipt": { type: "Receipt" },
  "chat.v1.TypingEvent": { type: "TypingEvent" },
  "chat.v1.PresenceEvent": { type: "Presence" },
  "chat.v1.ConversationEvent": { type: "ConversationEvent" },

  // PresenceService.
  "chat.v1.GetPresenceRequest": { args: "Query.presence" },
  "chat.v1.GetPresenceResponse": { fields: { presences: "Query.presence" } },

  // PushService.
  "chat.v1.WebhookTarget": { type: "WebhookTargetInput" },
  "chat.v1.WebPushSubscription": { type: "WebPushSubscriptionInput" },
  "chat.v1.RegisterPushTargetRequest": { type: "RegisterPushTargetInput" },
  "chat.v1.RegisterPushTargetResponse": noFields,
  "chat.v1.UnregisterPushTargetRequest": noFields,
  "chat.v1.UnregisterPushTargetResponse": noFields,
  "chat.v1.SetConversationMutedRequest": { type: "SetConversationMutedInput" },
  "chat.v1.SetConversationMutedResponse": noFields,
  "chat.v1.SetPushPreviewsRequest": { type: "SetPushPreviewsInput" },
  "chat.v1.SetPushPreviewsResponse": noFields,
  "chat.v1.GetPushSettingsRequest": noFields,
  "chat.v1.GetPushSettingsResponse": { type: "PushSettings" },

  // SyncService.
  "chat.v1.InboxEntry": { type: "InboxEntry" },
  "chat.v1.GetInboxRequest": { fields: { limit: "Query.inbox(first)", page_token: "Query.inbox(after)" } },
  "chat.v1.GetInboxResponse": { fields: { entries: "InboxConnection.nodes", next_page_token: "PageInfo.endCursor" } },
  "chat.v1.MarkReadRequest": { type: "MarkReadInput" },
  "chat.v1.MarkReadResponse": { type: "MarkReadPayload" },
  "chat.v1.GetMessageReadersRequest": { args: "Query.messageReaders" },
  "chat.v1.MessageReader": { type: "MessageReader" },
  "chat.v1.GetMessageReadersResponse": { fields: { readers: "Query.messageReaders" } },
};
