import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { PresenceStatus, ReceiptKind, type PresenceEvent, type Receipt, type TypingEvent } from "../../gen/chat/v1/messaging_pb.js";
import { ConversationKind, MessageKind, SystemEventKind, type Conversation, type Message, type User } from "../../gen/chat/v1/types_pb.js";
import { ChatClient, ChatSession, SendRejectedError, type ConnectionChange } from "../sdk/index.js";
import type { Screen } from "./screen.js";

/**
 * Below the indicator's life on the server (CHAT_TYPING_TTL_MS, 6 s by default) so it stays up while
 * the user keeps typing, above its throttle (2 s) so no refresh is dropped.
 */
const TYPING_REFRESH_MS = 3_000;
const HISTORY_SHOWN = 20;
const INBOX_SHOWN = 20;
/** How long /quit waits for the server to end the stream, which marks the user offline at once. */
const QUIT_GRACE_MS = 2_000;
const DEVICE_NAME = "terminal";

const HELP = [
  "commands:",
  "  /signup <user> <password>   create an account and log in",
  "  /login <user> <password>    log in (each login is a new device)",
  "  /inbox                      conversations, most recent first, with unread counts",
  "  /open <user | number | group title>   open a conversation (number: from /inbox)",
  "  <text>                      send to the open conversation (start with // to send a leading /)",
  "  /logout                     log this device out",
  "  /quit                       leave (also Ctrl-C or Ctrl-D)",
  "receipts under your messages: ✓ delivered, ✓✓ read; the prompt shows presence and who is typing.",
].join("\n");

/** A failure the user can fix; its message says how. */
class UserError extends Error {}

interface Watermark {
  delivered: bigint;
  read: bigint;
  /** The newest own message already reported as delivered / read, so each tick is shown once. */
  shownDelivered: bigint;
  shownRead: bigint;
}

interface OpenConversation {
  readonly conversation: Conversation;
  readonly title: string;
  /** The other member of a direct conversation: whose presence the prompt shows. */
  readonly peer: User | undefined;
  presence: PresenceEvent | undefined;
  /** Who is typing, and until when (ms). */
  readonly typing: Map<string, number>;
  /** Own messages (seq order), for receipts. */
  readonly mine: { seq: bigint; text: string }[];
  readonly watermarks: Map<string, Watermark>;
  lastShown: bigint;
}

export interface TerminalChatOptions {
  readonly baseUrl: string;
  readonly screen: Screen;
  readonly exit: (code: number) => void;
}

/**
 * The terminal chat client: commands and chat lines in, the open conversation's messages, receipts,
 * typing and presence out, as they happen.
 */
export class TerminalChat {
  private readonly baseUrl: string;
  private readonly screen: Screen;
  private readonly exit: (code: number) => void;
  private readonly paint: Painter;
  private client: ChatClient | undefined;
  private session: ChatSession | undefined;
  private current: OpenConversation | undefined;
  private readonly users = new Map<string, User>();
  private readonly conversations = new Map<string, Conversation>();
  /** Conversation ids in the order of the last /inbox, for `/open <number>`. */
  private inbox: string[] = [];
  private typingIn: string | undefined;
  private typingSentAt = 0;
  private outage = false;
  private quitting = false;
  /**
   * Commands and session events run one at a time, in arrival order: a message that arrives while
   * /open loads the history is shown after it (or dropped as already shown), never in the middle.
   */
  private queue: Promise<void> = Promise.resolve();

  constructor(options: TerminalChatOptions) {
    this.baseUrl = options.baseUrl;
    this.screen = options.screen;
    this.exit = options.exit;
    this.paint = painter(options.screen.interactive && !process.env.NO_COLOR);
  }

  start(): void {
    this.screen.onLine((line) => {
      // At once, while the typed line is still right above the cursor: by the time the queue gets to
      // it, other output may have been printed below it.
      if (isChatLine(line)) this.screen.eraseSubmitted(line);
      this.serial(() => this.handle(line));
    });
    this.screen.onEnd(() => void this.quit());
    this.screen.onKeypress(() => this.onKeypress());
    this.print(`chat-terminal, server ${this.baseUrl}`);
    this.print("type /signup <user> <password> or /login <user> <password> to start; /help lists the commands");
    this.screen.prompt();
  }

  private serial(task: () => Promise<void> | void): void {
    this.queue = this.queue.then(task).catch((error: unknown) => this.print(this.paint.error(this.explain(error))));
  }

  private print(text: string): void {
    this.screen.print(text);
  }

  private async handle(line: string): Promise<void> {
    const text = line.trim();
    if (text === "") return this.screen.prompt();
    if (isChatLine(text)) return this.sendText(text.startsWith("//") ? text.slice(1) : text);
    const [command, ...args] = text.split(/\s+/);
    switch (command) {
      case "/help":
        return this.print(HELP);
      case "/signup":
        return this.logIn(text, true);
      case "/login":
        return this.logIn(text, false);
      case "/logout":
        return this.logOut();
      case "/inbox":
        return this.showInbox();
      case "/open":
        return this.open(args.join(" "));
      case "/quit":
        return this.quit();
      default:
        return this.print(`unknown command ${command}: /help lists the commands`);
    }
  }

  private loggedIn(): { client: ChatClient; session: ChatSession } {
    if (!this.client || !this.session) throw new UserError("not logged in: type /login <user> <password> (or /signup <user> <password>)");
    return { client: this.client, session: this.session };
  }

  private async logIn(text: string, create: boolean): Promise<void> {
    const verb = create ? "signup" : "login";
    if (this.client) throw new UserError(`already logged in as ${this.client.session.user!.username}: type /logout first`);
    // The password is the rest of the line, so it may contain spaces.
    const match = /^\S+\s+(\S+)\s+(.+)$/.exec(text);
    if (!match) throw new UserError(`usage: /${verb} <user> <password>`);
    const [, username, password] = match as unknown as [string, string, string];
    // No timeoutMs: the SDK passes it to the transport as defaultTimeoutMs, which also cuts the device stream.
    const client = new ChatClient({ baseUrl: this.baseUrl, pingIntervalMs: 30_000 });
    try {
      if (create) await client.signUp(username, password, username, DEVICE_NAME);
      else await client.logIn(username, password, DEVICE_NAME);
    } catch (error) {
      throw new UserError(`${verb} failed: ${this.explain(error)}; try /${verb} <user> <password> again`);
    }
    const me = client.session.user!;
    this.users.set(me.userId, me);
    const session = await ChatSession.open(client, { backoff: { initialMs: 250, maxMs: 10_000 } });
    this.client = client;
    this.session = session;
    this.listen(session);
    this.print(`${create ? "signed up" : "logged in"} as ${this.paint.me(me.username)}: /inbox lists your conversations, /open <user> starts one`);
    this.refreshStatus();
  }

  private listen(session: ChatSession): void {
    // Events of a session that has since been closed (logout, quit) are no longer wanted.
    const live = <T>(handler: (value: T) => Promise<void> | void) => (value: T) => {
      if (this.session === session) this.serial(() => (this.session === session ? handler(value) : undefined));
    };
    session.on("message", live((message) => this.onMessage(message)));
    session.on("receipt", live((receipt) => this.onReceipt(receipt)));
    session.on("typing", live((typing) => this.onTyping(typing)));
    session.on("presence", live((presence) => this.onPresence(presence)));
    session.on(
      "conversation",
      live(({ conversation }) => {
        if (conversation) this.conversations.set(conversation.conversationId, conversation);
      }),
    );
    session.on("connection", live((change) => this.onConnection(change)));
    session.on("error", live((error) => this.print(this.paint.error(`error: ${error.message}`))));
  }

  private async logOut(): Promise<void> {
    const { client } = this.loggedIn();
    const name = client.session.user!.username;
    await this.endSession();
    try {
      await client.logOut();
    } catch (error) {
      throw new UserError(`logged out ${name} here, but the server was not told (${this.explain(error)}): this device's tokens stay valid until they expire`);
    }
    this.print(`logged out ${name}: /login <user> <password> to log in again`);
  }

  /** Ends the stream first so the server marks the user offline at once, then closes the session. */
  private async endSession(): Promise<void> {
    const session = this.session;
    this.stopTyping();
    this.session = undefined;
    this.client = undefined;
    this.current = undefined;
    this.inbox = [];
    this.outage = false;
    this.refreshStatus();
    if (!session) return;
    const stream = session.stream;
    if (stream) {
      stream.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stream.closed, new Promise((resolve) => (timer = setTimeout(resolve, QUIT_GRACE_MS)))]);
      clearTimeout(timer);
    }
    await session.close();
  }

  private async quit(): Promise<void> {
    if (this.quitting) return;
    this.quitting = true;
    try {
      await this.endSession();
    } finally {
      this.screen.close();
      this.exit(0);
    }
  }

  private async showInbox(): Promise<void> {
    const { client } = this.loggedIn();
    const { entries } = await client.sync.getInbox({ limit: INBOX_SHOWN });
    if (entries.length === 0) return this.print("the inbox is empty: /open <user> starts a conversation");
    await this.lookUp(entries.flatMap((entry) => [...entry.conversation!.memberUserIds, entry.lastMessage?.senderUserId ?? ""]));
    this.inbox = entries.map((entry) => entry.conversation!.conversationId);
    const titles = await Promise.all(entries.map((entry) => this.titleOf(entry.conversation!)));
    const width = Math.max(...titles.map((title) => title.length));
    this.print("inbox, most recent first:");
    entries.forEach((entry, index) => {
      this.conversations.set(entry.conversation!.conversationId, entry.conversation!);
      const unread = this.paint.unread((entry.unreadCount > 0n ? `${entry.unreadCount} unread` : "").padEnd(10));
      const last = entry.lastMessage;
      const preview = last ? `${this.senderName(last)}: ${shorten(describeText(last), 50)}` : "no messages yet";
      const when = entry.lastActivityAt ? formatWhen(entry.lastActivityAt) : "";
      this.print(`  ${String(index + 1).padStart(2)}. ${titles[index]!.padEnd(width)}  ${unread}  ${when}  ${preview}`);
    });
    this.print("/open <number> opens one");
  }

  private async open(target: string): Promise<void> {
    const { client } = this.loggedIn();
    if (!target) throw new UserError("usage: /open <user | number from /inbox | group title>");
    const conversation = await this.resolve(client, target);
    this.stopTyping();
    this.conversations.set(conversation.conversationId, conversation);
    const me = client.userId;
    const peerId = conversation.kind === ConversationKind.DIRECT ? conversation.memberUserIds.find((userId) => userId !== me) : undefined;
    const page = await client.history(conversation.conversationId, { limit: HISTORY_SHOWN });
    await this.lookUp([...conversation.memberUserIds, ...page.messages.map((message) => message.senderUserId)]);
    const open: OpenConversation = {
      conversation,
      title: await this.titleOf(conversation),
      peer: peerId ? this.users.get(peerId) : undefined,
      presence: undefined,
      typing: new Map(),
      mine: [],
      watermarks: new Map(),
      lastShown: 0n,
    };
    this.current = open;
    this.print(this.paint.rule(`── ${open.title}${page.hasMore ? ` (the last ${HISTORY_SHOWN} messages)` : ""} ──`));
    if (page.messages.length === 0) this.print("no messages yet: type a line and press Enter to send it");
    for (const message of page.messages) {
      this.print(this.formatMessage(message));
      if (message.senderUserId === me) open.mine.push({ seq: message.seq, text: describeText(message) });
      open.lastShown = message.seq;
    }
    const newestMine = open.mine[open.mine.length - 1];
    if (newestMine) {
      const { readers } = await client.sync.getMessageReaders({ conversationId: conversation.conversationId, seq: newestMine.seq });
      for (const reader of readers) this.watermark(open, reader.userId).read = newestMine.seq;
      this.showTicks(open);
    }
    if (open.lastShown > 0n) this.markRead(open.lastShown);
    this.watchPresence();
    this.refreshStatus();
  }

  private async resolve(client: ChatClient, target: string): Promise<Conversation> {
    const listed = /^\d+$/.test(target) ? this.inbox[Number(target) - 1] : undefined;
    const known = listed ? this.conversations.get(listed) : undefined;
    if (known) return known;
    const group = [...this.conversations.values()].find((conversation) => conversation.kind === ConversationKind.GROUP && conversation.title === target);
    if (group) return group;
    const [user] = (await client.accounts.lookupUsers({ usernames: [target] })).users;
    if (!user) throw new UserError(`no user called "${target}": check the name, or type /inbox and /open <number>`);
    if (user.userId === client.userId) throw new UserError("that is you: /open another user");
    this.users.set(user.userId, user);
    return client.openDirect(user.userId);
  }

  private sendText(text: string): void {
    if (!this.session) throw new UserError(`not sent ("${shorten(text, 30)}"): not logged in: type /login <user> <password> (or /signup <user> <password>)`);
    const session = this.session;
    const open = this.current;
    if (!open) throw new UserError(`not sent ("${shorten(text, 30)}"): no conversation open: type /open <user> first (/inbox lists your conversations)`);
    this.stopTyping();
    this.print(`${this.paint.time(formatTime(new Date()))} ${this.paint.me("you")}: ${text}`);
    session.send({ conversationId: open.conversation.conversationId }, text).then(
      (ack) =>
        this.serial(() => {
          addMine(open, ack.message!.seq, text);
          if (open === this.current) this.showTicks(open);
        }),
      (error: unknown) => this.print(this.paint.error(`not sent: "${shorten(text, 30)}": ${this.explain(error)}`)),
    );
  }

  private async onMessage(message: Message): Promise<void> {
    const client = this.client!;
    const me = client.userId;
    if (message.senderUserId !== me) this.session!.stream?.markDelivered(message.conversationId, message.seq);
    const open = this.current;
    if (open?.conversation.conversationId === message.conversationId) {
      if (message.seq <= open.lastShown) return;
      open.lastShown = message.seq;
      open.typing.delete(message.senderUserId);
      // Typed here: already on screen since Enter was pressed.
      if (message.senderDeviceId === client.deviceId) return;
      await this.lookUp([message.senderUserId]);
      this.print(this.formatMessage(message));
      if (message.senderUserId === me) addMine(open, message.seq, describeText(message));
      else this.markRead(message.seq);
      this.refreshStatus();
      return;
    }
    if (message.senderUserId === me) return;
    await this.lookUp([message.senderUserId]);
    const conversation = await this.conversation(client, message.conversationId);
    const title = await this.titleOf(conversation);
    const where = conversation.kind === ConversationKind.GROUP ? `${title} · ` : "";
    this.print(`${this.paint.unread("●")} ${where}${this.senderName(message)}: ${describeText(message)}  ${this.paint.time(`(/open ${title})`)}`);
  }

  private async onReceipt(receipt: Receipt): Promise<void> {
    const open = this.current;
    if (open?.conversation.conversationId !== receipt.conversationId || receipt.userId === this.client!.userId) return;
    const mark = this.watermark(open, receipt.userId);
    if (receipt.kind === ReceiptKind.READ) mark.read = max(mark.read, receipt.seq);
    else mark.delivered = max(mark.delivered, receipt.seq);
    await this.lookUp([receipt.userId]);
    this.showTicks(open);
  }

  /** One line per tick change: the newest own message each member now has (✓) or has read (✓✓). */
  private showTicks(open: OpenConversation): void {
    for (const [userId, mark] of open.watermarks) {
      const name = this.users.get(userId)?.username ?? "someone";
      const delivered = newestMine(open, max(mark.shownDelivered, mark.read), mark.delivered);
      const read = newestMine(open, mark.shownRead, mark.read);
      if (delivered) {
        mark.shownDelivered = delivered.seq;
        this.print(this.paint.tick(`  ✓ delivered to ${name}: "${shorten(delivered.text, 40)}"`));
      }
      if (read) {
        mark.shownRead = read.seq;
        this.print(this.paint.tick(`  ✓✓ read by ${name}: "${shorten(read.text, 40)}"`));
      }
    }
  }

  private watermark(open: OpenConversation, userId: string): Watermark {
    let mark = open.watermarks.get(userId);
    if (!mark) open.watermarks.set(userId, (mark = { delivered: 0n, read: 0n, shownDelivered: 0n, shownRead: 0n }));
    return mark;
  }

  private async onTyping(typing: TypingEvent): Promise<void> {
    const open = this.current;
    if (open?.conversation.conversationId !== typing.conversationId || typing.userId === this.client!.userId) return;
    if (!typing.typing) open.typing.delete(typing.userId);
    else {
      const until = typing.expiresAt ? timestampDate(typing.expiresAt).getTime() : Date.now() + 6_000;
      open.typing.set(typing.userId, until);
      // The indicator goes by itself when no refresh comes (the typist stopped or vanished).
      setTimeout(() => this.refreshStatus(), Math.max(0, until - Date.now()) + 50).unref();
      await this.lookUp([typing.userId]);
    }
    this.refreshStatus();
  }

  private onPresence(presence: PresenceEvent): void {
    const open = this.current;
    if (open?.peer?.userId !== presence.userId) return;
    open.presence = presence;
    this.refreshStatus();
  }

  private async onConnection(change: ConnectionChange): Promise<void> {
    if (change.state === "connected") {
      // Presence watches belong to a stream: a new stream must be told again.
      this.watchPresence();
      if (this.outage) this.print(this.paint.time("· reconnected"));
      this.outage = false;
    } else if (change.state === "reconnecting" && !this.outage) {
      this.outage = true;
      this.print(this.paint.error(`· connection lost${change.error ? ` (${this.explain(change.error)})` : ""}; reconnecting…`));
    } else if (change.state === "closed" && change.error) {
      await this.endSession();
      this.print(this.paint.error(`· the server ended this session (${this.explain(change.error)}): type /login <user> <password>`));
    }
    this.refreshStatus();
  }

  private watchPresence(): void {
    const peer = this.current?.peer;
    this.session?.stream?.watchPresence(peer ? [peer.userId] : []);
  }

  private markRead(seq: bigint): void {
    const client = this.client!;
    const conversationId = this.current!.conversation.conversationId;
    client.sync.markRead({ conversationId, seq }).catch((error: unknown) => this.print(this.paint.error(`could not mark as read: ${this.explain(error)}`)));
  }

  private onKeypress(): void {
    const open = this.current;
    const stream = this.session?.stream;
    if (!open || !stream) return;
    const line = this.screen.currentLine;
    if (line.trim() === "" || line.startsWith("/")) return this.stopTyping();
    if (this.typingIn === open.conversation.conversationId && Date.now() - this.typingSentAt < TYPING_REFRESH_MS) return;
    this.typingIn = open.conversation.conversationId;
    this.typingSentAt = Date.now();
    stream.typing(this.typingIn, true);
  }

  private stopTyping(): void {
    if (!this.typingIn) return;
    this.session?.stream?.typing(this.typingIn, false);
    this.typingIn = undefined;
  }

  /** The prompt: who I am or the open conversation, the peer's presence, who is typing, the link state. */
  private refreshStatus(): void {
    const parts: string[] = [];
    const open = this.current;
    if (!this.client) {
      this.screen.setStatus("");
      return;
    }
    if (open) {
      parts.push(open.title);
      if (open.peer && open.presence) parts.push(describePresence(open.presence));
      const now = Date.now();
      const typists = [...open.typing].filter(([, until]) => until > now).map(([userId]) => this.users.get(userId)?.username ?? "someone");
      if (typists.length > 0) parts.push(`${typists.join(", ")} ${typists.length > 1 ? "are" : "is"} typing…`);
    } else {
      parts.push(this.client.session.user!.username);
    }
    if (this.session && this.session.state !== "connected") parts.push(`${this.session.state}…`);
    this.screen.setStatus(parts.join(" · "));
  }

  private formatMessage(message: Message): string {
    const time = this.paint.time(message.sentAt ? formatTime(timestampDate(message.sentAt)) : "--:--");
    if (message.kind === MessageKind.SYSTEM) return `${time} ${this.paint.time(`· ${this.describeSystem(message)}`)}`;
    return `${time} ${this.senderName(message)}: ${describeText(message)}`;
  }

  private senderName(message: Message): string {
    if (message.senderUserId === this.client?.userId) return this.paint.me("you");
    return this.paint.peer(this.users.get(message.senderUserId)?.username ?? "someone");
  }

  private describeSystem(message: Message): string {
    const event = message.system;
    const name = (userId: string) => this.users.get(userId)?.username ?? "someone";
    const actor = event ? name(event.actorUserId) : "someone";
    const targets = event ? event.targetUserIds.map(name).join(", ") : "";
    switch (event?.kind) {
      case SystemEventKind.GROUP_CREATED:
        return `${actor} created the group "${event.title}"`;
      case SystemEventKind.MEMBERS_ADDED:
        return `${actor} added ${targets}`;
      case SystemEventKind.MEMBER_REMOVED:
        return `${actor} removed ${targets}`;
      case SystemEventKind.MEMBER_LEFT:
        return `${actor} left`;
      case SystemEventKind.GROUP_RENAMED:
        return `${actor} renamed the group "${event.title}"`;
      case SystemEventKind.ROLE_CHANGED:
        return `${actor} changed the role of ${targets}`;
      default:
        return "the group changed";
    }
  }

  private async conversation(client: ChatClient, conversationId: string): Promise<Conversation> {
    const known = this.conversations.get(conversationId);
    if (known) return known;
    const { conversation } = await client.messaging.getConversation({ conversationId });
    this.conversations.set(conversationId, conversation!);
    return conversation!;
  }

  private async titleOf(conversation: Conversation): Promise<string> {
    if (conversation.kind === ConversationKind.GROUP) return conversation.title || "(untitled group)";
    const peerId = conversation.memberUserIds.find((userId) => userId !== this.client?.userId);
    if (!peerId) return "(yourself)";
    await this.lookUp([peerId]);
    return this.users.get(peerId)?.username ?? "(unknown user)";
  }

  /** Fetches the users not seen yet, so names can be shown without a call each. */
  private async lookUp(userIds: readonly string[]): Promise<void> {
    const missing = [...new Set(userIds)].filter((userId) => userId && !this.users.has(userId));
    if (missing.length === 0 || !this.client) return;
    const { users } = await this.client.accounts.lookupUsers({ userIds: missing });
    for (const user of users) this.users.set(user.userId, user);
  }

  private explain(error: unknown): string {
    if (error instanceof UserError) return error.message;
    if (error instanceof SendRejectedError) return error.status.message;
    const connectError = ConnectError.from(error);
    if (connectError.code === Code.Unavailable) {
      return `cannot reach the server at ${this.baseUrl} (${connectError.rawMessage}): start it (npm start) or give the right --url`;
    }
    return connectError.rawMessage;
  }
}

/** A line to send rather than a command; "//" sends a line that starts with "/". */
function isChatLine(line: string): boolean {
  const text = line.trim();
  return text !== "" && (!text.startsWith("/") || text.startsWith("//"));
}

function addMine(open: OpenConversation, seq: bigint, text: string): void {
  if (open.mine.some((entry) => entry.seq === seq)) return;
  open.mine.push({ seq, text });
  open.mine.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
}

/** The newest own message with after < seq <= upTo. */
function newestMine(open: OpenConversation, after: bigint, upTo: bigint): { seq: bigint; text: string } | undefined {
  for (let index = open.mine.length - 1; index >= 0; index--) {
    const entry = open.mine[index]!;
    if (entry.seq <= after) return undefined;
    if (entry.seq <= upTo) return entry;
  }
  return undefined;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function describeText(message: Message): string {
  if (message.kind === MessageKind.TOMBSTONE) return "(deleted)";
  if (message.kind === MessageKind.SYSTEM) return "(group update)";
  return message.text;
}

function describePresence(presence: PresenceEvent): string {
  if (presence.status === PresenceStatus.ONLINE) return "online";
  return presence.lastSeen ? `last seen ${formatWhen(presence.lastSeen)}` : "offline";
}

function shorten(text: string, length: number): string {
  const line = text.replace(/\s+/g, " ");
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

function formatTime(date: Date): string {
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

/** The time for today, the date and time before that. */
function formatWhen(timestamp: Timestamp): string {
  const date = timestampDate(timestamp);
  const today = new Date().toDateString() === date.toDateString();
  const day = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
  return today ? formatTime(date) : `${day} ${formatTime(date)}`;
}

type Painter = Record<"me" | "peer" | "time" | "tick" | "unread" | "error" | "rule", (text: string) => string>;

function painter(enabled: boolean): Painter {
  const sgr = (code: string) => (text: string) => (enabled ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { me: sgr("32"), peer: sgr("36"), time: sgr("2"), tick: sgr("34"), unread: sgr("1;33"), error: sgr("31"), rule: sgr("1") };
}
