import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";
import { AccountsService, type Session } from "../../gen/chat/v1/accounts_pb.js";
import { AttachmentsService } from "../../gen/chat/v1/attachments_pb.js";
import { ErrorDetailSchema, ErrorReason } from "../../gen/chat/v1/errors_pb.js";
import { GroupsService } from "../../gen/chat/v1/groups_pb.js";
import { MessagingService, type StreamRequest } from "../../gen/chat/v1/messaging_pb.js";
import { PresenceService } from "../../gen/chat/v1/presence_pb.js";
import { SyncService } from "../../gen/chat/v1/sync_pb.js";
import { DeviceStream, type DeviceStreamOptions } from "./device-stream.js";

export type Protocol = "connect" | "grpc" | "grpc-web";

export interface ChatClientOptions {
  /** e.g. `http://127.0.0.1:8080` */
  readonly baseUrl: string;
  readonly protocol?: Protocol;
  /** Per-call deadline for unary calls (the device stream has none). */
  readonly timeoutMs?: number;
  /**
   * HTTP/2 PING interval. Set it for long-lived clients: a connection that died without a FIN (a
   * network that vanished) is only found out by an unanswered PING, and until then every new stream
   * would be opened on it and hang.
   */
  readonly pingIntervalMs?: number;
  /** How long a PING may go unanswered before the connection is dropped; default 15 s. */
  readonly pingTimeoutMs?: number;
}

/**
 * A logged-in (or about to log in) device: the generated stubs with the token attached, plus the
 * device stream. One ChatClient per device.
 */
export class ChatClient {
  readonly accounts: Client<typeof AccountsService>;
  readonly messaging: Client<typeof MessagingService>;
  readonly groups: Client<typeof GroupsService>;
  readonly sync: Client<typeof SyncService>;
  readonly presence: Client<typeof PresenceService>;
  readonly attachments: Client<typeof AttachmentsService>;
  /**
   * When set, a unary call that fails with TOKEN_EXPIRED refreshes the token once and is retried.
   * Off by default so that callers who test expiry see the raw error; ChatSession turns it on.
   */
  autoRefresh = false;
  private currentSession: Session | undefined;
  private refreshing: Promise<Session> | undefined;
  private readonly sessionListeners = new Set<(session: Session | undefined) => void>();

  constructor(readonly options: ChatClientOptions) {
    const transport = createTransport(options, this.authorize);
    this.accounts = createClient(AccountsService, transport);
    this.messaging = createClient(MessagingService, transport);
    this.groups = createClient(GroupsService, transport);
    this.sync = createClient(SyncService, transport);
    this.presence = createClient(PresenceService, transport);
    this.attachments = createClient(AttachmentsService, transport);
  }

  get session(): Session {
    if (!this.currentSession) throw new Error("not logged in: call signUp or logIn first");
    return this.currentSession;
  }

  get userId(): string {
    return this.session.user!.userId;
  }

  get deviceId(): string {
    return this.session.deviceId;
  }

  get isLoggedIn(): boolean {
    return this.currentSession !== undefined;
  }

  async signUp(username: string, password: string, displayName = username, deviceName = "sdk"): Promise<Session> {
    const { session } = await this.accounts.signUp({ username, password, displayName, deviceName });
    return this.setSession(session!);
  }

  async logIn(username: string, password: string, deviceName = "sdk"): Promise<Session> {
    const { session } = await this.accounts.logIn({ username, password, deviceName });
    return this.setSession(session!);
  }

  async refresh(): Promise<Session> {
    const { session } = await this.accounts.refresh({ refreshToken: this.session.refreshToken });
    return this.setSession(session!);
  }

  /**
   * Refreshes, sharing one call among concurrent callers: the refresh token rotates, so a second
   * refresh with the same token would be refused (and may look like token theft to the server).
   */
  refreshOnce(): Promise<Session> {
    this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Adopts a session saved earlier (e.g. by a ChatSession's storage) without logging in again. */
  restore(session: Session): void {
    this.setSession(session);
  }

  /** Called after every login, refresh and logout, so the tokens can be saved. Returns the unsubscriber. */
  onSessionChange(listener: (session: Session | undefined) => void): () => void {
    this.sessionListeners.add(listener);
    return () => this.sessionListeners.delete(listener);
  }

  async logOut(): Promise<void> {
    await this.accounts.logOut({});
    this.setSession(undefined);
  }

  private setSession<S extends Session | undefined>(session: S): S {
    this.currentSession = session;
    for (const listener of this.sessionListeners) listener(session);
    return session;
  }

  /** Sends without a stream. A new client_msg_id is made unless one is given (give it to retry). */
  async send(to: { conversationId: string } | { recipientUserId: string }, text: string, clientMsgId: string = randomUUID()) {
    const target = "conversationId" in to ? { case: "conversationId" as const, value: to.conversationId } : { case: "recipientUserId" as const, value: to.recipientUserId };
    return this.messaging.sendMessage({ clientMsgId, to: target, text });
  }

  /**
   * Uploads a file for a message to this conversation: a pre-signed URL from CreateUpload, then a PUT
   * of the bytes there. Returns the attachment id to send with the message.
   */
  async uploadAttachment(conversationId: string, file: { bytes: Uint8Array; contentType: string; fileName?: string }): Promise<string> {
    const ticket = await this.attachments.createUpload({ conversationId, contentType: file.contentType, sizeBytes: BigInt(file.bytes.byteLength), fileName: file.fileName ?? "" });
    const response = await fetch(ticket.uploadUrl, { method: "PUT", headers: ticket.headers, body: new Blob([new Uint8Array(file.bytes)]) });
    if (!response.ok) {
      const refusal = (await response.json().catch(() => ({}))) as { message?: string };
      throw new ConnectError(`the upload was refused (HTTP ${response.status}): ${refusal.message ?? "no reason given"}`, response.status >= 500 ? Code.Unavailable : Code.InvalidArgument);
    }
    return ticket.attachmentId;
  }

  /** The bytes of an attachment, through a pre-signed download URL, with what the sender said of it. */
  async downloadAttachment(attachmentId: string): Promise<{ bytes: Uint8Array; contentType: string; fileName: string }> {
    const ticket = await this.attachments.createDownload({ attachmentId });
    const response = await fetch(ticket.downloadUrl);
    if (!response.ok) throw new ConnectError(`the download failed (HTTP ${response.status}); try again`, response.status >= 500 ? Code.Unavailable : Code.NotFound);
    return { bytes: new Uint8Array(await response.arrayBuffer()), contentType: ticket.contentType, fileName: ticket.fileName };
  }

  async history(conversationId: string, page: { beforeSeq?: bigint; afterSeq?: bigint; limit?: number } = {}) {
    return this.messaging.getHistory({ conversationId, beforeSeq: page.beforeSeq, afterSeq: page.afterSeq, limit: page.limit ?? 0 });
  }

  /** Every message of a conversation, oldest first, page by page. */
  async allMessages(conversationId: string, pageSize = 200) {
    const all = [];
    let afterSeq = 0n;
    for (;;) {
      const page = await this.history(conversationId, { afterSeq, limit: pageSize });
      all.push(...page.messages);
      if (!page.hasMore || page.messages.length === 0) return all;
      afterSeq = page.messages[page.messages.length - 1]!.seq;
    }
  }

  async openDirect(userId: string) {
    const { conversation } = await this.messaging.openDirectConversation({ userId });
    return conversation!;
  }

  /**
   * Opens the device stream. Without `resumeFrom` the device starts live from now; with it, the
   * server first sends everything after those cursors (conversations not listed: from the start).
   */
  openStream(options: DeviceStreamOptions = {}): DeviceStream {
    // timeoutMs 0: no deadline. The unary default must not cut a stream that is meant to stay open.
    return new DeviceStream((requests: AsyncIterable<StreamRequest>, signal: AbortSignal) => this.messaging.stream(requests, { signal, timeoutMs: 0 }), options);
  }

  private readonly authorize: Interceptor = (next) => async (request) => {
    if (this.currentSession) request.header.set("authorization", `Bearer ${this.currentSession.accessToken}`);
    try {
      return await next(request);
    } catch (error) {
      // Only unary calls are retried: a stream's request messages are already consumed.
      if (!this.autoRefresh || request.stream || request.method.name === "Refresh" || !this.currentSession || !isTokenExpired(error)) throw error;
      await this.refreshOnce();
      request.header.set("authorization", `Bearer ${this.currentSession.accessToken}`);
      return await next(request);
    }
  };
}

function createTransport(options: ChatClientOptions, authorize: Interceptor): Transport {
  const common = {
    baseUrl: options.baseUrl,
    interceptors: [authorize],
    defaultTimeoutMs: options.timeoutMs,
    pingIntervalMs: options.pingIntervalMs,
    pingTimeoutMs: options.pingTimeoutMs,
  };
  switch (options.protocol ?? "connect") {
    case "grpc":
      return createGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: "2" });
    default:
      return createConnectTransport({ ...common, httpVersion: "2" });
  }
}

/** True for the error a call gets when its access token has expired (refreshing fixes it). */
export function isTokenExpired(error: unknown): boolean {
  const connectError = ConnectError.from(error);
  return connectError.code === Code.Unauthenticated && connectError.findDetails(ErrorDetailSchema)[0]?.reason === ErrorReason.TOKEN_EXPIRED;
}
