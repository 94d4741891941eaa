// Every call the web client makes to the server, in one place: the GraphQL documents it sends. The
// rest of the client sees plain objects in one shape (aliases keep `id` for each object's own id), so
// a change of the GraphQL schema is made here alone.

const ATTACHMENT = "attachmentId contentType sizeBytes fileName";
const MESSAGE = `id: messageId conversationId seq senderUserId clientMsgId kind text sentAt system { kind actorUserId targetUserIds title } attachments { ${ATTACHMENT} }`;
const CONVERSATION = "id: conversationId kind title lastSeq memberUserIds createdAt";
const USER = "id: userId username displayName";
const GROUP = `id: groupId name members(first: 1000) { nodes { userId role } } conversation { ${CONVERSATION} }`;
const SESSION = `accessToken accessTokenExpiresAt refreshToken deviceId user { ${USER} }`;
const ERRORS = "userErrors { code message field }";

/** Documents sent over HTTP POST /graphql. */
const Q = {
  signUp: `mutation($input: SignUpInput!) { signUp(input: $input) { session { ${SESSION} } ${ERRORS} } }`,
  logIn: `mutation($input: LogInInput!) { logIn(input: $input) { session { ${SESSION} } ${ERRORS} } }`,
  logOut: `mutation { logOut { ${ERRORS} } }`,
  refresh: `mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { session { ${SESSION} } ${ERRORS} } }`,
  inbox: `query($after: String) { inbox(first: 100, after: $after) {
    nodes { conversation { ${CONVERSATION} } lastMessage { ${MESSAGE} } readSeq unreadCount lastActivityAt }
    pageInfo { hasNextPage endCursor } } }`,
  history: `query($c: ID!, $before: String) { messages(conversationId: $c, last: 50, before: $before) {
    nodes { ${MESSAGE} } pageInfo { hasPreviousPage } } }`,
  newer: `query($c: ID!, $after: String) { messages(conversationId: $c, first: 200, after: $after) {
    nodes { ${MESSAGE} } pageInfo { hasNextPage } } }`,
  users: `query($ids: [ID!], $names: [String!]) { users(userIds: $ids, usernames: $names, first: 200) { nodes { ${USER} } } }`,
  group: `query($id: ID!) { group(groupId: $id) { ${GROUP} } }`,
  createGroup: `mutation($input: CreateGroupInput!) { createGroup(input: $input) { group { ${GROUP} } ${ERRORS} } }`,
  addMembers: `mutation($input: AddGroupMembersInput!) { addGroupMembers(input: $input) { group { ${GROUP} } ${ERRORS} } }`,
  removeMember: `mutation($input: RemoveGroupMemberInput!) { removeGroupMember(input: $input) { group { ${GROUP} } ${ERRORS} } }`,
  leaveGroup: `mutation($input: LeaveGroupInput!) { leaveGroup(input: $input) { ${ERRORS} } }`,
  renameGroup: `mutation($input: RenameGroupInput!) { renameGroup(input: $input) { group { ${GROUP} } ${ERRORS} } }`,
  openDirect: `mutation($input: OpenDirectConversationInput!) { openDirectConversation(input: $input) { conversation { ${CONVERSATION} } ${ERRORS} } }`,
  send: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { duplicate message { ${MESSAGE} } ${ERRORS} } }`,
  markRead: `mutation($input: MarkReadInput!) { markRead(input: $input) { readSeq ${ERRORS} } }`,
  typing: `mutation($input: SetTypingInput!) { setTyping(input: $input) { ${ERRORS} } }`,
  upload: `mutation($input: CreateUploadInput!) { createUpload(input: $input) { upload { attachmentId uploadUrl headers { name value } } ${ERRORS} } }`,
  download: `mutation($input: CreateDownloadInput!) { createDownload(input: $input) { download { downloadUrl expiresAt contentType sizeBytes fileName } ${ERRORS} } }`,
};

/** Subscriptions, sent over the graphql-ws socket (live.js). */
export const SUBSCRIPTIONS = {
  feed: `subscription($resume: [ConversationCursorInput!]) { messages(resume: $resume) {
    kind heads { conversationId seq } message { ${MESSAGE} } } }`,
  receipts: "subscription { receipts { conversationId userId kind seq } }",
  presence: "subscription($u: [ID!]!) { presence(userIds: $u) { userId status lastSeen } }",
  typing: "subscription($c: ID!) { typing(conversationId: $c) { userId typing expiresAt } }",
};

/** Messages from GraphQL carry their attachments: nothing to look up afterwards. */
export const MESSAGES_CARRY_ATTACHMENTS = true;

/** A GraphQL message's attachments in the client's shape: `{ id, contentType, size, fileName }`. */
export const attachmentsOf = (raw) =>
  raw.attachments?.map((a) => ({ id: a.attachmentId, contentType: a.contentType, size: Number(a.sizeBytes), fileName: a.fileName ?? "" }));

/** What the server refused, with its reason (an `ErrorReason` name such as "GROUP_FULL"). */
export class ApiError extends Error {
  constructor(message, code, field = "") {
    super(message);
    this.code = code;
    this.field = field;
  }
}

export class GraphQLRequestError extends ApiError {
  constructor(errors) {
    super(errors.map((error) => error.message).join("; "), errors[0]?.extensions?.code ?? "UNKNOWN", errors[0]?.extensions?.field ?? "");
    this.errors = errors;
  }
}

/** Errors that a fresh access token can cure. */
const TOKEN_CODES = new Set(["TOKEN_EXPIRED", "TOKEN_INVALID", "TOKEN_MISSING"]);
export const isTokenError = (code) => TOKEN_CODES.has(code);

/** Worth sending again later with the same clientMsgId: the request may not have reached the server, or the server asked for a retry. */
const TRANSIENT_CODES = new Set(["UNAVAILABLE", "SERVER_DRAINING", "RATE_LIMITED", "INTERNAL", "NETWORK"]);
export const isTransient = (error) => !(error instanceof ApiError) || TRANSIENT_CODES.has(error.code);

/**
 * The embedded blob store signs URLs with the gateway's own address, which may not be the name the
 * browser knows it by (127.0.0.1 against localhost): its /blobs/ paths are fetched from this page's
 * origin, the gateway that served it, which the page's content security policy allows.
 */
function reachable(url) {
  const parsed = new URL(url, location.href);
  return parsed.origin !== location.origin && parsed.pathname.startsWith("/blobs/") ? `${parsed.pathname}${parsed.search}` : parsed.href;
}

const authorization = (token) => (token ? { authorization: `Bearer ${token}` } : {});

async function graphql(query, variables, token) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...authorization(token) },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without a GraphQL result`, response.status >= 500 ? "UNAVAILABLE" : "UNKNOWN");
  }
  if (body.errors?.length) throw new GraphQLRequestError(body.errors);
  return body.data;
}

/** A mutation's payload, or its first user error thrown as an ApiError. */
function payload(result) {
  const [error] = result.userErrors ?? [];
  if (error) throw new ApiError(error.message, error.code, error.field ?? "");
  return result;
}

// ---------------------------------------------------------------------------------------------
// Without a session: logging in

export const signUp = (username, password, displayName, deviceName) =>
  graphql(Q.signUp, { input: { username, password, displayName: displayName || null, deviceName } }).then((data) => payload(data.signUp).session);
export const logIn = (username, password, deviceName) => graphql(Q.logIn, { input: { username, password, deviceName } }).then((data) => payload(data.logIn).session);
export const refreshSession = (refreshToken) => graphql(Q.refresh, { input: { refreshToken } }).then((data) => payload(data.refreshSession).session);
export const logOut = (token) => graphql(Q.logOut, {}, token);

// ---------------------------------------------------------------------------------------------
// With a session: `call(fn)` runs fn(accessToken), renewing the token once if it is refused

/** A group with its members page flattened: `{ id, name, members: [{ userId, role }], conversation }`. */
const groupShape = (group) => group && { ...group, members: group.members.nodes };

export class Api {
  /** @param {{ call: <T>(fn: (token: string) => Promise<T>) => Promise<T> }} session */
  constructor(session) {
    this.session = session;
  }

  gql(query, variables = {}) {
    return this.session.call((token) => graphql(query, variables, token));
  }

  /** One page of the inbox: `{ nodes, pageInfo }`. */
  async inbox(after) {
    return (await this.gql(Q.inbox, { after })).inbox;
  }

  /** The newest 50 messages before `beforeSeq` (or the newest 50): `{ messages, hasOlder }`. */
  async history(conversationId, beforeSeq) {
    const data = await this.gql(Q.history, { c: conversationId, before: beforeSeq === undefined ? null : String(beforeSeq) });
    return { messages: data.messages.nodes, hasOlder: data.messages.pageInfo.hasPreviousPage };
  }

  /** Up to 200 messages after `afterSeq` (or from the first): `{ messages, hasNewer }`. */
  async newer(conversationId, afterSeq) {
    const data = await this.gql(Q.newer, { c: conversationId, after: afterSeq === undefined ? null : String(afterSeq) });
    return { messages: data.messages.nodes, hasNewer: data.messages.pageInfo.hasNextPage };
  }

  /** At most 200 ids and names in all. */
  async users({ ids, names }) {
    return (await this.gql(Q.users, { ids: ids ?? null, names: names ?? null })).users.nodes;
  }

  async group(groupId) {
    return groupShape((await this.gql(Q.group, { id: groupId })).group);
  }

  async createGroup(name, memberUserIds) {
    return groupShape(payload((await this.gql(Q.createGroup, { input: { name, memberUserIds } })).createGroup).group);
  }

  async addMembers(groupId, userIds) {
    return groupShape(payload((await this.gql(Q.addMembers, { input: { groupId, userIds } })).addGroupMembers).group);
  }

  async removeMember(groupId, userId) {
    return groupShape(payload((await this.gql(Q.removeMember, { input: { groupId, userId } })).removeGroupMember).group);
  }

  async leaveGroup(groupId) {
    payload((await this.gql(Q.leaveGroup, { input: { groupId } })).leaveGroup);
  }

  async renameGroup(groupId, name) {
    return groupShape(payload((await this.gql(Q.renameGroup, { input: { groupId, name } })).renameGroup).group);
  }

  async openDirect(userId) {
    return payload((await this.gql(Q.openDirect, { input: { userId } })).openDirectConversation).conversation;
  }

  /** Stores a message; a retry with the same clientMsgId returns the original (`duplicate: true`). */
  async send({ conversationId, clientMsgId, text, attachmentIds }) {
    const answer = payload((await this.gql(Q.send, { input: { conversationId, clientMsgId, text, attachmentIds: attachmentIds ?? [] } })).sendMessage);
    return { message: answer.message, duplicate: answer.duplicate };
  }

  async markRead(conversationId, seq) {
    return BigInt(payload((await this.gql(Q.markRead, { input: { conversationId, seq: String(seq) } })).markRead).readSeq);
  }

  async setTyping(conversationId, typing) {
    payload((await this.gql(Q.typing, { input: { conversationId, typing } })).setTyping);
  }

  /** Who has read each of these messages: a Map from seq to reader user ids. */
  async readers(conversationId, seqs) {
    // Seqs are BigInts, so the document holds digits only.
    const fields = seqs.map((seq, i) => `r${i}: messageReaders(conversationId: $c, seq: "${BigInt(seq)}") { userId }`).join(" ");
    const data = await this.gql(`query($c: ID!) { ${fields} }`, { c: conversationId });
    return new Map(seqs.map((seq, i) => [seq, data[`r${i}`].map((reader) => reader.userId)]));
  }

  /** Asks for a pre-signed upload URL, then PUTs the file there. Returns the attachment id. */
  async upload(conversationId, file) {
    const contentType = file.type || "application/octet-stream";
    const input = { conversationId, contentType, sizeBytes: String(file.size), fileName: file.name.slice(0, 255) || null };
    const ticket = payload((await this.gql(Q.upload, { input })).createUpload).upload;
    const headers = Object.fromEntries(ticket.headers.map((header) => [header.name, header.value]));
    const response = await fetch(reachable(ticket.uploadUrl), { method: "PUT", headers, body: file });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(body.message ?? `the upload failed (${response.status})`, body.reason ?? (response.status >= 500 ? "UNAVAILABLE" : "UNKNOWN"));
    }
    return ticket.attachmentId;
  }

  /** A signed URL to GET the file: `{ url, expiresAt (ms), contentType, size, fileName }`. */
  async download(attachmentId) {
    const answer = payload((await this.gql(Q.download, { input: { attachmentId } })).createDownload).download;
    return { url: reachable(answer.downloadUrl), expiresAt: Date.parse(answer.expiresAt) || 0, contentType: answer.contentType, size: Number(answer.sizeBytes), fileName: answer.fileName ?? "" };
  }
}
