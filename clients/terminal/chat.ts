import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { basename, extname, join, resolve as resolvePath } from "node:path";
import { GroupRole } from "../../gen/chat/v1/groups_pb.js";
import { PresenceStatus, ReceiptKind, type PresenceEvent, type Receipt, type TypingEvent } from "../../gen/chat/v1/messaging_pb.js";
import { ConversationKind, MessageKind, SystemEventKind, type Attachment, type Conversation, type Message, type User } from "../../gen/chat/v1/types_pb.js";
import { ChatClient, ChatSession, SendRejectedError, type ConnectionChange } from "../sdk/index.js";
import type { LineRef, Screen } from "./screen.js";

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
  "  /signup <user>              create an account and log in (the password is asked for, not shown)",
  "  /login <user>               log in (each login is a new device; the password is asked for)",
  "  /inbox                      conversations, most recent first, with unread counts",
  "  /open <user | number | group title>   open a conversation (number: from /inbox)",
  "  <text>                      send to the open conversation (start with // to send a leading /)",
  '  /group <name> <user>...     create a group with these people and open it ("quote a name" with spaces)',
  "  /add <user>...              add people to the open group (admins and the owner)",
  "  /remove <user>              remove someone from the open group",
  "  /members                    who is in the open group, with their roles",
  "  /leave                      leave the open group",
  "  /attach <file> [caption]    send a file to the open conversation",
  "  /save <number> [path]       save a file shown as [#number] (to this directory by default)",
  "  /logout                     log this device out",
  "  /quit                       leave (also Ctrl-C or Ctrl-D)",
  "ticks after your messages: … sending, ✓ sent, ✓✓ delivered, ✓✓ read; the prompt shows presence and who is typing.",
].join("\n");

/** The widest tick, so a line keeps its length (and the rows it takes) as its tick changes. */
const TICK_WIDTH = "✓✓ read".length;

/** Content types by file extension, for /attach; the server says which it accepts. */
const CONTENT_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".pdf": "application/pdf",
  ".txt": "text/plain",
  ".md": "text/plain",
  ".log": "text/plain",
  ".csv": "text/plain",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
};

/** A failure the user can fix; its message says how. */
class UserError extends Error {}

interface Watermark {
  delivered: bigint;
  read: bigint;
}

/** One of my messages on screen, and the tick it shows. */
interface Mine {
  /** Unset until the server has stored it. */
  seq: bigint | undefined;
  /** The line without its tick. */
  readonly body: string;
  readonly line: LineRef | undefined;
  tick: string;
}

/** A file shown on screen as [#number], for /save. */
interface ShownAttachment {
  readonly attachmentId: string;
  readonly fileName: string;
  readonly size: bigint;
}

interface OpenConversation {
  readonly conversation: Conversation;
  readonly title: string;
  /** The other member of a direct conversation: whose presence the prompt shows. */
  readonly peer: User | undefined;
  presence: PresenceEvent | undefined;
  /** Who is typing, and until when (ms). */
  readonly typing: Map<string, number>;
  /** My messages on screen, in the order shown, for their ticks. */
  readonly mine: Mine[];
  readonly watermarks: Map<string, Watermark>;
  /** The other members (a group's, once loaded): whom a message must reach for ✓✓. */
  others: string[];
  /** A group: members and their roles. */
  members: { userId: string; role: GroupRole }[];
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
  /** Files shown on screen, numbered from 1 for /save. */
  private readonly shownAttachments: ShownAttachment[] = [];
  /** clientMsgIds of messages typed here: already on screen when the stream brings them. */
  private readonly sentHere = new Set<string>();
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
      // A password typed on the command line goes from the screen and the input history at once.
      if (/^\s*\/(login|signup)\s+\S+\s+\S/.test(line)) {
        this.screen.eraseSubmitted(line);
        this.screen.forget(line);
      }
      this.serial(() => this.handle(line));
    });
    this.screen.onEnd(() => void this.quit());
    this.screen.onKeypress(() => this.onKeypress());
    this.print(`chat-terminal, server ${this.baseUrl}`);
    this.print("type /signup <user> or /login <user> to start (the password is asked for and not shown); /help lists the commands");
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
      case "/group":
        return this.createGroup(text);
      case "/add":
        return this.addMembers(args);
      case "/remove":
        return this.removeMember(args);
      case "/members":
        return this.showMembers();
      case "/leave":
        return this.leaveGroup();
      case "/attach":
        return this.attach(text);
      case "/save":
        return this.save(text);
      case "/quit":
        return this.quit();
      default:
        return this.print(`unknown command ${command}: /help lists the commands`);
    }
  }

  private loggedIn(): { client: ChatClient; session: ChatSession } {
    if (!this.client || !this.session) throw new UserError("not logged in: type /login <user> (or /signup <user>)");
    return { client: this.client, session: this.session };
  }

  private async logIn(text: string, create: boolean): Promise<void> {
    const verb = create ? "signup" : "login";
    if (this.client) throw new UserError(`already logged in as ${this.client.session.user!.username}: type /logout first`);
    // A password on the line (the rest of it, so it may contain spaces) is taken, though it is better asked for.
    const match = /^\S+\s+(\S+)(?:\s+(.+))?$/.exec(text);
    if (!match) throw new UserError(`usage: /${verb} <user> (the password is asked for next)`);
    const username = match[1]!;
    let password = match[2];
    if (password === undefined) {
      password = await this.screen.askHidden(create ? `choose a password for ${username} (not shown): ` : `password for ${username} (not shown): `);
      if (create && password !== "" && (await this.screen.askHidden("the same password again: ")) !== password) {
        throw new UserError(`the two passwords differ: type /signup ${username} to try again`);
      }
      if (password === "") throw new UserError(`no password given: type /${verb} ${username} to try again`);
    } else {
      this.print(this.paint.time(`· the password was taken off the screen; next time type /${verb} ${username} alone and it is asked for, unseen`));
    }
    // No timeoutMs: the SDK passes it to the transport as defaultTimeoutMs, which also cuts the device stream.
    const client = new ChatClient({ baseUrl: this.baseUrl, pingIntervalMs: 30_000 });
    try {
      if (create) await client.signUp(username, password, username, DEVICE_NAME);
      else await client.logIn(username, password, DEVICE_NAME);
    } catch (error) {
      throw new UserError(`${verb} failed: ${this.explain(error)}; try /${verb} ${username} again`);
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
    this.print(`logged out ${name}: /login <user> to log in again`);
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
      const preview = last ? `${this.senderName(last)}: ${shorten(describeText(last) || describeFiles(last.attachments), 50)}` : "no messages yet";
      const when = entry.lastActivityAt ? formatWhen(entry.lastActivityAt) : "";
      this.print(`  ${String(index + 1).padStart(2)}. ${titles[index]!.padEnd(width)}  ${unread}  ${when}  ${preview}`);
    });
    this.print("/open <number> opens one");
  }

  private async open(target: string): Promise<void> {
    const { client } = this.loggedIn();
    if (!target) throw new UserError("usage: /open <user | number from /inbox | group title>");
    await this.show(client, await this.resolve(client, target));
  }

  /** Makes a conversation the open one: its latest messages, then live. */
  private async show(client: ChatClient, conversation: Conversation): Promise<void> {
    this.stopTyping();
    this.conversations.set(conversation.conversationId, conversation);
    const me = client.userId;
    const peerId = conversation.kind === ConversationKind.DIRECT ? conversation.memberUserIds.find((userId) => userId !== me) : undefined;
    const page = await client.history(conversation.conversationId, { limit: HISTORY_SHOWN });
    const members = conversation.kind === ConversationKind.GROUP ? await this.groupMembers(client, conversation.conversationId) : [];
    await this.lookUp([...conversation.memberUserIds, ...members.map((member) => member.userId), ...page.messages.flatMap((message) => [message.senderUserId, ...(message.system?.targetUserIds ?? [])])]);
    const open: OpenConversation = {
      conversation,
      title: await this.titleOf(conversation),
      peer: peerId ? this.users.get(peerId) : undefined,
      presence: undefined,
      typing: new Map(),
      mine: [],
      watermarks: new Map(),
      others: (conversation.kind === ConversationKind.GROUP ? members.map((member) => member.userId) : conversation.memberUserIds).filter((userId) => userId !== me),
      members,
      lastShown: 0n,
    };
    this.current = open;
    this.print(this.paint.rule(`── ${open.title}${page.hasMore ? ` (the last ${HISTORY_SHOWN} messages)` : ""} ──`));
    if (page.messages.length === 0) this.print("no messages yet: type a line and press Enter to send it");
    for (const message of page.messages) {
      this.showMessage(open, message);
      open.lastShown = message.seq;
    }
    const newestMine = open.mine.at(-1);
    if (newestMine?.seq !== undefined) {
      const { readers } = await client.sync.getMessageReaders({ conversationId: conversation.conversationId, seq: newestMine.seq });
      for (const reader of readers) this.watermark(open, reader.userId).read = newestMine.seq;
      this.updateTicks(open);
    }
    if (open.lastShown > 0n) this.markRead(open.lastShown);
    this.watchPresence();
    this.refreshStatus();
  }

  private async groupMembers(client: ChatClient, groupId: string): Promise<{ userId: string; role: GroupRole }[]> {
    const { group } = await client.groups.getGroup({ groupId });
    return (group?.members ?? []).map((member) => ({ userId: member.userId, role: member.role }));
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

  /** Users by username, all of them or a UserError naming the unknown ones. */
  private async usersNamed(client: ChatClient, names: readonly string[]): Promise<User[]> {
    const wanted = [...new Set(names.map((name) => name.replace(/^@/, "").toLowerCase()))];
    const { users } = await client.accounts.lookupUsers({ usernames: wanted });
    for (const user of users) this.users.set(user.userId, user);
    const missing = wanted.filter((name) => !users.some((user) => user.username === name));
    if (missing.length > 0) throw new UserError(`no user called ${missing.map((name) => `"${name}"`).join(", ")}: check the names`);
    return users;
  }

  private openGroup(): { client: ChatClient; open: OpenConversation } {
    const { client } = this.loggedIn();
    const open = this.current;
    if (!open || open.conversation.kind !== ConversationKind.GROUP) throw new UserError("no group open: /open <group title> first (or /group <name> <user>... to create one)");
    return { client, open };
  }

  private async createGroup(text: string): Promise<void> {
    const { client } = this.loggedIn();
    const [, name, ...names] = splitArgs(text);
    if (!name || names.length === 0) throw new UserError('usage: /group <name> <user> [user...]  (quote a name with spaces: /group "Weekend plans" bob carol)');
    const users = await this.usersNamed(client, names);
    const { group } = await client.groups.createGroup({ name, memberUserIds: users.map((user) => user.userId).filter((userId) => userId !== client.userId) });
    this.print(`created the group "${group!.name}" with ${users.map((user) => user.username).join(", ")}`);
    await this.show(client, group!.conversation!);
  }

  private async addMembers(names: readonly string[]): Promise<void> {
    const { client, open } = this.openGroup();
    if (names.length === 0) throw new UserError("usage: /add <user> [user...]");
    const users = await this.usersNamed(client, names);
    const { group } = await client.groups.addMembers({ groupId: open.conversation.conversationId, userIds: users.map((user) => user.userId) });
    this.applyMembers(open, group!.members);
  }

  private async removeMember(names: readonly string[]): Promise<void> {
    const { client, open } = this.openGroup();
    if (names.length !== 1) throw new UserError("usage: /remove <user>");
    const [user] = await this.usersNamed(client, names);
    const { group } = await client.groups.removeMember({ groupId: open.conversation.conversationId, userId: user!.userId });
    this.applyMembers(open, group!.members);
  }

  private async leaveGroup(): Promise<void> {
    const { client, open } = this.openGroup();
    await client.groups.leaveGroup({ groupId: open.conversation.conversationId });
    this.print(`you left "${open.title}": its history stays readable with /open ${open.title}`);
    this.current = undefined;
    this.refreshStatus();
  }

  private async showMembers(): Promise<void> {
    const { client, open } = this.openGroup();
    this.applyMembers(open, (await client.groups.getGroup({ groupId: open.conversation.conversationId })).group!.members);
    await this.lookUp(open.members.map((member) => member.userId));
    this.print(`${open.title}: ${open.members.length} members`);
    for (const member of open.members) {
      const name = member.userId === client.userId ? `${this.users.get(member.userId)?.username ?? "you"} (you)` : (this.users.get(member.userId)?.username ?? "someone");
      this.print(`  ${name}  ${this.paint.time(roleName(member.role))}`);
    }
  }

  private applyMembers(open: OpenConversation, members: readonly { userId: string; role: GroupRole }[]): void {
    open.members = members.map((member) => ({ userId: member.userId, role: member.role }));
    open.others = open.members.map((member) => member.userId).filter((userId) => userId !== this.client?.userId);
    this.updateTicks(open);
  }

  /** /attach <file> [caption]: uploads the file to a pre-signed URL, then sends it like a line of text. */
  private async attach(text: string): Promise<void> {
    const { client, session } = this.loggedIn();
    const [, path, ...caption] = splitArgs(text);
    if (!path) throw new UserError("usage: /attach <file> [caption]  (quote a path with spaces)");
    const open = this.current;
    if (!open) throw new UserError("no conversation open: /open <user> first, then /attach <file>");
    const full = resolvePath(path);
    const info = await stat(full).catch(() => undefined);
    if (!info?.isFile()) throw new UserError(`no file at ${full}: check the path`);
    const fileName = basename(full);
    const contentType = CONTENT_TYPES[extname(fileName).toLowerCase()] ?? "application/octet-stream";
    this.print(this.paint.time(`· uploading ${fileName} (${fileSize(BigInt(info.size))})…`));
    const bytes = await readFile(full);
    const attachmentId = await client.uploadAttachment(open.conversation.conversationId, { bytes, contentType, fileName }).catch((error: unknown) => {
      throw new UserError(`${fileName} was not sent: ${this.explain(error)}`);
    });
    const shown = this.registerAttachment({ attachmentId, fileName, size: BigInt(info.size) }, contentType);
    this.sendOwn(session, open, [caption.join(" "), shown].filter(Boolean).join(" "), caption.join(" "), [attachmentId]);
  }

  /** /save <number> [path]: the file shown as [#number], to the path (a directory or a file name) or here. */
  private async save(text: string): Promise<void> {
    const { client } = this.loggedIn();
    const [, number, path] = splitArgs(text);
    const shown = number && /^#?\d+$/.test(number) ? this.shownAttachments[Number(number.replace("#", "")) - 1] : undefined;
    if (!shown) throw new UserError(`usage: /save <number> [path], the number of a file shown as [#number]${this.shownAttachments.length ? ` (1-${this.shownAttachments.length})` : ": none shown yet"}`);
    const { bytes, fileName } = await client.downloadAttachment(shown.attachmentId);
    const safeName = basename(fileName || shown.fileName).replace(/^\.+/, "") || `attachment-${number}`;
    let target = path ? resolvePath(path) : resolvePath(safeName);
    if ((await stat(target).catch(() => undefined))?.isDirectory()) target = join(target, safeName);
    // Never over an existing file: the user names another path if that is what they want.
    await writeFile(target, bytes, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      throw new UserError(error.code === "EEXIST" ? `${target} exists already: /save ${number} <another path>` : `could not write ${target} (${error.message}): /save ${number} <another path>`);
    });
    this.print(`saved ${safeName} (${fileSize(BigInt(bytes.byteLength))}) to ${target}`);
  }

  private registerAttachment(attachment: ShownAttachment, contentType: string): string {
    this.shownAttachments.push(attachment);
    const kind = contentType.startsWith("image/") ? "image" : "file";
    return this.paint.file(`[#${this.shownAttachments.length} ${kind}: ${attachment.fileName || kind}, ${fileSize(attachment.size)}]`);
  }

  private describeAttachments(attachments: readonly Attachment[]): string {
    return attachments.map((attachment) => this.registerAttachment({ attachmentId: attachment.attachmentId, fileName: attachment.fileName, size: attachment.sizeBytes }, attachment.contentType)).join(" ");
  }

  private sendText(text: string): void {
    if (!this.session) throw new UserError(`not sent ("${shorten(text, 30)}"): not logged in: type /login <user> (or /signup <user>)`);
    const session = this.session;
    const open = this.current;
    if (!open) throw new UserError(`not sent ("${shorten(text, 30)}"): no conversation open: type /open <user> first (/inbox lists your conversations)`);
    this.sendOwn(session, open, text, text, []);
  }

  /** Shows my message at once with "…", then sends it; the tick on its line follows what happens to it. */
  private sendOwn(session: ChatSession, open: OpenConversation, shown: string, text: string, attachmentIds: readonly string[]): void {
    this.stopTyping();
    const clientMsgId = randomUUID();
    this.sentHere.add(clientMsgId);
    const mine = this.printMine(open, `${this.paint.time(formatTime(new Date()))} ${this.paint.me("you")}: ${shown}`, undefined);
    session.send({ conversationId: open.conversation.conversationId }, text, clientMsgId, attachmentIds).then(
      (ack) =>
        this.serial(() => {
          mine.seq = ack.message!.seq;
          this.updateTicks(open);
        }),
      (error: unknown) => {
        this.sentHere.delete(clientMsgId);
        this.serial(() => {
          mine.tick = "✗ not sent";
          this.screen.rewrite(mine.line, withTick(mine.body, this.paint.error(mine.tick.slice(0, TICK_WIDTH).padEnd(TICK_WIDTH))));
          this.print(this.paint.error(`not sent: "${shorten(text || shown, 30)}": ${this.explain(error)}`));
        });
      },
    );
  }

  private printMine(open: OpenConversation, body: string, seq: bigint | undefined): Mine {
    const mine: Mine = { seq, body, line: undefined, tick: seq === undefined ? "…" : this.tickOf(open, seq) };
    (mine as { line: LineRef | undefined }).line = this.screen.print(withTick(body, this.paintTick(mine.tick)));
    open.mine.push(mine);
    return mine;
  }

  /** A message of the open conversation, mine with its tick. */
  private showMessage(open: OpenConversation, message: Message): void {
    const text = this.formatMessage(message);
    if (message.senderUserId === this.client?.userId && message.kind === MessageKind.TEXT) this.printMine(open, text, message.seq);
    else this.print(text);
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
      if (this.sentHere.delete(message.clientMsgId)) return;
      await this.lookUp([message.senderUserId, ...(message.system?.targetUserIds ?? [])]);
      this.showMessage(open, message);
      if (message.kind === MessageKind.SYSTEM) await this.onGroupChange(client, open, message);
      if (message.senderUserId !== me) this.markRead(message.seq);
      this.refreshStatus();
      return;
    }
    if (message.senderUserId === me) return;
    await this.lookUp([message.senderUserId]);
    const conversation = await this.conversation(client, message.conversationId);
    const title = await this.titleOf(conversation);
    const where = conversation.kind === ConversationKind.GROUP ? `${title} · ` : "";
    const text = message.kind === MessageKind.SYSTEM ? this.describeSystem(message) : `${this.senderName(message)}: ${this.describeBody(message)}`;
    this.print(`${this.paint.unread("●")} ${where}${text}  ${this.paint.time(`(/open ${title})`)}`);
  }

  /** Members come and go: ticks count the current ones. */
  private async onGroupChange(client: ChatClient, open: OpenConversation, message: Message): Promise<void> {
    const kind = message.system?.kind;
    if (kind === SystemEventKind.GROUP_RENAMED || kind === SystemEventKind.GROUP_CREATED) return;
    const removed = (kind === SystemEventKind.MEMBER_REMOVED && message.system!.targetUserIds.includes(client.userId)) || (kind === SystemEventKind.MEMBER_LEFT && message.system!.actorUserId === client.userId);
    if (removed) return;
    this.applyMembers(open, await this.groupMembers(client, open.conversation.conversationId));
  }

  private async onReceipt(receipt: Receipt): Promise<void> {
    const open = this.current;
    if (open?.conversation.conversationId !== receipt.conversationId || receipt.userId === this.client!.userId) return;
    const mark = this.watermark(open, receipt.userId);
    if (receipt.kind === ReceiptKind.READ) mark.read = max(mark.read, receipt.seq);
    else mark.delivered = max(mark.delivered, receipt.seq);
    this.updateTicks(open);
  }

  /** ✓ stored, ✓✓ on a device of every other member, "✓✓ read" read by all of them. */
  private tickOf(open: OpenConversation, seq: bigint): string {
    const marks = open.others.map((userId) => open.watermarks.get(userId));
    if (marks.length === 0) return "✓";
    if (marks.every((mark) => mark && mark.read >= seq)) return "✓✓ read";
    if (marks.every((mark) => mark && max(mark.delivered, mark.read) >= seq)) return "✓✓";
    return "✓";
  }

  private paintTick(tick: string): string {
    const padded = tick.padEnd(TICK_WIDTH);
    return tick === "✓✓ read" ? this.paint.read(padded) : this.paint.tick(padded);
  }

  /** Rewrites, in place, the line of every message of mine whose tick changed. */
  private updateTicks(open: OpenConversation): void {
    if (open !== this.current) return;
    for (const mine of open.mine) {
      if (mine.seq === undefined) continue;
      const tick = this.tickOf(open, mine.seq);
      if (tick === mine.tick) continue;
      mine.tick = tick;
      this.screen.rewrite(mine.line, withTick(mine.body, this.paintTick(tick)));
    }
  }

  private watermark(open: OpenConversation, userId: string): Watermark {
    let mark = open.watermarks.get(userId);
    if (!mark) open.watermarks.set(userId, (mark = { delivered: 0n, read: 0n }));
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
      this.print(this.paint.error(`· the server ended this session (${this.explain(change.error)}): type /login <user>`));
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
    return `${time} ${this.senderName(message)}: ${this.describeBody(message)}`;
  }

  /** The text, and each file as [#number kind: name, size] for /save. */
  private describeBody(message: Message): string {
    const files = message.kind === MessageKind.TEXT && message.attachments.length > 0 ? this.describeAttachments(message.attachments) : "";
    return [describeText(message), files].filter(Boolean).join(" ");
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

/** Files in an inbox preview, without numbers (they are given when the message is shown). */
function describeFiles(attachments: readonly Attachment[]): string {
  return attachments.map((attachment) => `[${attachment.contentType.startsWith("image/") ? "image" : "file"}: ${attachment.fileName || "unnamed"}]`).join(" ");
}

/** A line of mine with its tick after it. */
function withTick(body: string, tick: string): string {
  return `${body} ${tick}`;
}

/** Words of a command line; "double" or 'single' quotes keep spaces in one word. */
function splitArgs(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3] ?? "");
}

function roleName(role: GroupRole): string {
  return role === GroupRole.OWNER ? "owner" : role === GroupRole.ADMIN ? "admin" : "member";
}

/** 2345 → "2.3 KB". */
function fileSize(bytes: bigint): string {
  let value = Number(bytes);
  if (value < 1024) return `${value} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
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

type Painter = Record<"me" | "peer" | "time" | "tick" | "read" | "file" | "unread" | "error" | "rule", (text: string) => string>;

function painter(enabled: boolean): Painter {
  const sgr = (code: string) => (text: string) => (enabled ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { me: sgr("32"), peer: sgr("36"), time: sgr("2"), tick: sgr("2"), read: sgr("34"), file: sgr("35"), unread: sgr("1;33"), error: sgr("31"), rule: sgr("1") };
}
