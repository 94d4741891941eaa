// Every call the web client makes to the server, in one place: the GraphQL documents it sends, and
// the few Connect unary calls (JSON over HTTP) for what GraphQL does not offer (attachments). The rest
// of the client sees plain objects in one shape whichever protocol answered, so a change of the
// GraphQL schema is made here alone.

const MESSAGE = "id conversationId seq senderUserId clientMsgId kind text sentAt system { kind actorUserId targetUserIds title }";
const CONVERSATION = "id kind title lastSeq memberUserIds createdAt";
const USER = "id username displayName";
const GROUP = `id name members { userId role } conversation { ${CONVERSATION} }`;
const SESSION = "accessToken accessTokenExpiresAt refreshToken deviceId user { id username displayName }";

/** Documents sent over HTTP POST /graphql. */
const Q = {
  signUp: `mutation($u: String!, $p: String!, $d: String, $n: String) { signUp(username: $u, password: $p, displayName: $d, deviceName: $n) { ${SESSION} } }`,
  logIn: `mutation($u: String!, $p: String!, $n: String) { logIn(username: $u, password: $p, deviceName: $n) { ${SESSION} } }`,
  logOut: "mutation { logOut }",
  refresh: `mutation($r: String!) { refreshSession(refreshToken: $r) { ${SESSION} } }`,
  inbox: `query($after: String) { inbox(first: 100, after: $after) {
    nodes { conversation { ${CONVERSATION} } lastMessage { ${MESSAGE} } readSeq unreadCount lastActivityAt }
    pageInfo { hasNextPage endCursor } } }`,
  history: `query($c: ID!, $before: String) { messages(conversationId: $c, last: 50, before: $before) {
    nodes { ${MESSAGE} } pageInfo { hasPreviousPage } } }`,
  newer: `query($c: ID!, $after: String) { messages(conversationId: $c, first: 200, after: $after) {
    nodes { ${MESSAGE} } pageInfo { hasNextPage } } }`,
  users: `query($ids: [ID!], $names: [String!]) { users(ids: $ids, usernames: $names) { ${USER} } }`,
  group: `query($id: ID!) { group(id: $id) { ${GROUP} } }`,
  createGroup: `mutation($name: String!, $members: [ID!]) { createGroup(name: $name, memberUserIds: $members) { ${GROUP} } }`,
  addMembers: `mutation($g: ID!, $u: [ID!]!) { addGroupMembers(groupId: $g, userIds: $u) { ${GROUP} } }`,
  removeMember: `mutation($g: ID!, $u: ID!) { removeGroupMember(groupId: $g, userId: $u) { ${GROUP} } }`,
  leaveGroup: "mutation($g: ID!) { leaveGroup(groupId: $g) }",
  renameGroup: `mutation($g: ID!, $name: String!) { renameGroup(groupId: $g, name: $name) { ${GROUP} } }`,
  openDirect: `mutation($u: ID!) { openDirectConversation(userId: $u) { ${CONVERSATION} } }`,
  send: `mutation($c: ID!, $id: String!, $t: String!) { sendMessage(conversationId: $c, clientMsgId: $id, text: $t) { duplicate message { ${MESSAGE} } } }`,
  markRead: `mutation($c: ID!, $s: UInt64!) { markRead(conversationId: $c, seq: $s) { readSeq } }`,
  typing: `mutation($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, typing: $t) }`,
};

/** Subscriptions, sent over the graphql-ws socket (live.js). */
export const SUBSCRIPTIONS = {
  feed: `subscription($resume: [ConversationCursorInput!]) { messages(resume: $resume) {
    kind heads { conversationId seq } message { ${MESSAGE} } } }`,
  receipts: "subscription { receipts { conversationId userId kind seq } }",
  presence: "subscription($u: [ID!]!) { presence(userIds: $u) { userId status lastSeen } }",
  typing: "subscription($c: ID!) { typing(conversationId: $c) { userId typing expiresAt } }",
};

/**
 * Whether messages from GraphQL carry their attachments. They do not yet: the client looks them up
 * with `attachmentsOf` (one Connect call per page of messages).
 */
export const MESSAGES_CARRY_ATTACHMENTS = false;

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

/** A Connect unary call with the JSON codec: `POST /<service>/<method>`, errors as `{code, message, details}`. */
async function connect(service, method, request, token) {
  const response = await fetch(`/chat.v1.${service}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...authorization(token) },
    body: JSON.stringify(request),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without a result`, response.status >= 500 ? "UNAVAILABLE" : "UNKNOWN");
  }
  if (!response.ok) {
    const detail = body.details?.find((entry) => entry.type === "chat.v1.ErrorDetail")?.debug ?? {};
    const reason = String(detail.reason ?? "").replace(/^ERROR_REASON_/, "") || String(body.code ?? "unknown").toUpperCase();
    throw new ApiError(body.message ?? `the server answered ${response.status}`, reason, detail.field ?? "");
  }
  return body;
}

const CONNECT_KINDS = { MESSAGE_KIND_TEXT: "TEXT", MESSAGE_KIND_SYSTEM: "SYSTEM", MESSAGE_KIND_TOMBSTONE: "TOMBSTONE" };

/** A Connect JSON message in the GraphQL shape (proto3 JSON leaves out empty fields). */
function fromConnectMessage(m) {
  const system = m.system ? { kind: String(m.system.kind ?? "").replace(/^SYSTEM_EVENT_KIND_/, ""), actorUserId: m.system.actorUserId ?? "", targetUserIds: m.system.targetUserIds ?? [], title: m.system.title ?? "" } : null;
  return {
    id: m.messageId,
    conversationId: m.conversationId,
    seq: m.seq ?? "0",
    senderUserId: m.senderUserId ?? "",
    clientMsgId: m.clientMsgId ?? "",
    kind: CONNECT_KINDS[m.kind] ?? "TEXT",
    text: m.text ?? "",
    sentAt: m.sentAt ?? null,
    system,
    attachments: (m.attachments ?? []).map((a) => ({ id: a.attachmentId, contentType: a.contentType ?? "", size: Number(a.sizeBytes ?? 0), fileName: a.fileName ?? "" })),
  };
}

// ---------------------------------------------------------------------------------------------
// Without a session: logging in

export const signUp = (username, password, displayName, deviceName) => graphql(Q.signUp, { u: username, p: password, d: displayName || null, n: deviceName }).then((data) => data.signUp);
export const logIn = (username, password, deviceName) => graphql(Q.logIn, { u: username, p: password, n: deviceName }).then((data) => data.logIn);
export const refreshSession = (refreshToken) => graphql(Q.refresh, { r: refreshToken }).then((data) => data.refreshSession);
export const logOut = (token) => graphql(Q.logOut, {}, token);

// ---------------------------------------------------------------------------------------------
// With a session: `call(fn)` runs fn(accessToken), renewing the token once if it is refused

export class Api {
  /** @param {{ call: <T>(fn: (token: string) => Promise<T>) => Promise<T> }} session */
  constructor(session) {
    this.session = session;
  }

  gql(query, variables = {}) {
    return this.session.call((token) => graphql(query, variables, token));
  }

  rpc(service, method, request) {
    return this.session.call((token) => connect(service, method, request, token));
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
    return (await this.gql(Q.users, { ids: ids ?? null, names: names ?? null })).users;
  }

  async group(groupId) {
    return (await this.gql(Q.group, { id: groupId })).group;
  }

  async createGroup(name, memberUserIds) {
    return (await this.gql(Q.createGroup, { name, members: memberUserIds })).createGroup;
  }

  async addMembers(groupId, userIds) {
    return (await this.gql(Q.addMembers, { g: groupId, u: userIds })).addGroupMembers;
  }

  async removeMember(groupId, userId) {
    return (await this.gql(Q.removeMember, { g: groupId, u: userId })).removeGroupMember;
  }

  async leaveGroup(groupId) {
    await this.gql(Q.leaveGroup, { g: groupId });
  }

  async renameGroup(groupId, name) {
    return (await this.gql(Q.renameGroup, { g: groupId, name })).renameGroup;
  }

  async openDirect(userId) {
    return (await this.gql(Q.openDirect, { u: userId })).openDirectConversation;
  }

  /**
   * Stores a message; a retry with the same clientMsgId returns the original (`duplicate: true`).
   * Attachments go through Connect: GraphQL's sendMessage takes text only.
   */
  async send({ conversationId, clientMsgId, text, attachmentIds }) {
    if (attachmentIds?.length) {
      const answer = await this.rpc("MessagingService", "SendMessage", { clientMsgId, conversationId, text, attachmentIds });
      return { message: fromConnectMessage(answer.message), duplicate: Boolean(answer.duplicate) };
    }
    return (await this.gql(Q.send, { c: conversationId, id: clientMsgId, t: text })).sendMessage;
  }

  async markRead(conversationId, seq) {
    return BigInt((await this.gql(Q.markRead, { c: conversationId, s: String(seq) })).markRead.readSeq);
  }

  async setTyping(conversationId, typing) {
    await this.gql(Q.typing, { c: conversationId, t: typing });
  }

  /** Who has read each of these messages: a Map from seq to reader user ids. */
  async readers(conversationId, seqs) {
    // Seqs are BigInts, so the document holds digits only.
    const fields = seqs.map((seq, i) => `r${i}: messageReaders(conversationId: $c, seq: "${BigInt(seq)}") { userId }`).join(" ");
    const data = await this.gql(`query($c: ID!) { ${fields} }`, { c: conversationId });
    return new Map(seqs.map((seq, i) => [seq, data[`r${i}`].map((reader) => reader.userId)]));
  }

  /**
   * The attachments of the messages from `fromSeq` to `toSeq` (at most 200): a Map from seq (a
   * decimal string) to `[{ id, contentType, size, fileName }]`, every seq of the range present.
   */
  async attachmentsOf(conversationId, fromSeq, toSeq) {
    const limit = Number(toSeq - fromSeq) + 1;
    const answer = await this.rpc("MessagingService", "GetHistory", { conversationId, afterSeq: String(fromSeq - 1n), limit });
    const found = new Map();
    for (let seq = fromSeq; seq <= toSeq; seq++) found.set(String(seq), []);
    for (const m of answer.messages ?? []) found.set(String(m.seq), fromConnectMessage(m).attachments);
    return found;
  }

  /** Asks for a pre-signed upload URL, then PUTs the file there. Returns the attachment id. */
  async upload(conversationId, file) {
    const contentType = file.type || "application/octet-stream";
    const ticket = await this.rpc("AttachmentsService", "CreateUpload", { conversationId, contentType, sizeBytes: String(file.size), fileName: file.name.slice(0, 255) });
    const response = await fetch(reachable(ticket.uploadUrl), { method: "PUT", headers: ticket.headers ?? { "content-type": contentType }, body: file });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(body.message ?? `the upload failed (${response.status})`, body.reason ?? (response.status >= 500 ? "UNAVAILABLE" : "UNKNOWN"));
    }
    return ticket.attachmentId;
  }

  /** A signed URL to GET the file: `{ url, expiresAt (ms), contentType, size, fileName }`. */
  async download(attachmentId) {
    const answer = await this.rpc("AttachmentsService", "CreateDownload", { attachmentId });
    return { url: reachable(answer.downloadUrl), expiresAt: Date.parse(answer.expiresAt ?? "") || 0, contentType: answer.contentType ?? "", size: Number(answer.sizeBytes ?? 0), fileName: answer.fileName ?? "" };
  }
}
