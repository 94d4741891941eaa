// The web client: log in, inbox, conversations and groups, attachments, live updates. Plain DOM, no
// framework. Everything the server pushes arrives on one WebSocket (live.js); every other call is
// made through api.js.

import { Api, ApiError, attachmentsOf, GraphQLRequestError, SUBSCRIPTIONS } from "./api.js";
import { LiveConnection } from "./live.js";
import { Outbox } from "./outbox.js";
import { Session } from "./session.js";
import { clockTime, dayLabel, describeError, describeSystem, fileSize, h, lastSeen, longTime, maxSeq, newClientMsgId, parseUsernames, shortTime, typingLine, userName } from "./format.js";

/** Own messages whose readers are looked up when a conversation opens (receipts then keep it current). */
const READ_STATE_WINDOW = 20;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 5000;
/** Older history is fetched when the reader scrolls this close to the top. */
const SCROLL_BACK_PX = 150;
/** A signed download URL is asked for again this long before it expires. */
const URL_MARGIN_MS = 10_000;
const ROLE_RANK = { MEMBER: 1, ADMIN: 2, OWNER: 3 };

const $ = (id) => /** @type {any} */ (document.getElementById(id));

const session = new Session((reason) => {
  stopApp();
  showLogin(reason);
});
const api = new Api(session);

/** Everything about the logged-in user; replaced whole at each login so late answers of a past session are ignored. */
let app = null;

function newAppState(me) {
  return {
    me,
    live: /** @type {LiveConnection | null} */ (null),
    liveState: "connecting",
    conversations: new Map(),
    users: new Map([[me.id, me]]),
    presence: new Map(),
    /** When each user was last seen online, kept across restarts (of the page and of the server). */
    seen: loadSeen(me.id),
    openId: null,
    /** Per conversation, the last seq the feed gave us; null until the feed's first READY. */
    cursors: /** @type {Map<string, bigint> | null} */ (null),
    inbox: { timer: 0, running: false, again: false, loaded: false },
    presenceWatch: { key: "", stop: null },
    typingWatch: null,
    typingOut: { conversationId: null, sentAt: 0, idle: 0 },
    /** Messages not yet stored by the server, in the order they were written; sent one at a time. */
    outbox: new Outbox({
      storage: localStorage,
      key: outboxKey(me.id),
      deliver: (entry) => deliver(entry),
      onChange: (entry) => rerender(conversation(entry.conversationId)),
    }),
    /** Signed download URLs and the elements showing each attachment, by attachment id. */
    downloads: new Map(),
    attachmentNodes: new Map(),
    clock: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Local memory: last seen times and the outbox survive a reload

const seenKey = (userId) => `chat.seen.${userId}`;
const outboxKey = (userId) => `chat.outbox.${userId}`;

function loadSeen(userId) {
  try {
    return new Map(Object.entries(JSON.parse(localStorage.getItem(seenKey(userId)) ?? "{}")).filter(([, ms]) => Number.isFinite(ms)));
  } catch {
    return new Map();
  }
}

function saveSeen() {
  localStorage.setItem(seenKey(app.me.id), JSON.stringify(Object.fromEntries(app.seen)));
}

// ---------------------------------------------------------------------------------------------
// Conversations and messages

function conversation(id) {
  let c = app.conversations.get(id);
  if (!c) {
    c = {
      id,
      known: false,
      kind: "DIRECT",
      title: "",
      memberUserIds: [],
      /** A group's name and members with their roles; null until loaded. */
      group: null,
      /** False once we left or were removed: the history stays readable. */
      member: true,
      lastSeq: 0n,
      readSeq: 0n,
      unread: 0,
      lastMessage: null,
      lastActivityAt: 0,
      messages: new Map(),
      /** Other members' read watermarks, and their devices' delivery marks (highest per user). */
      readers: new Map(),
      delivered: new Map(),
      typing: new Map(),
      history: "none",
      hasOlder: false,
      marking: 0n,
      draft: "",
      /** Files picked for the next message. */
      draftFiles: [],
    };
    app.conversations.set(id, c);
  }
  return c;
}

const normalize = (raw) => ({ ...raw, seq: BigInt(raw.seq), sentAt: raw.sentAt ? Date.parse(raw.sentAt) : 0, attachments: attachmentsOf(raw) });
const peerOf = (c) => c.memberUserIds.find((id) => id !== app.me.id) ?? app.me.id;
const nameOf = (id) => (id === app.me.id ? "You" : userName(app.users.get(id)));
const title = (c) => (c.kind === "GROUP" ? c.title || "Group" : userName(app.users.get(peerOf(c))));
const bump = (map, key, seq) => map.set(key, maxSeq(map.get(key) ?? 0n, seq));
const bySeq = (a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0);

function applyConversation(raw) {
  const c = conversation(raw.id);
  c.known = true;
  c.kind = raw.kind;
  c.title = raw.title;
  c.memberUserIds = raw.memberUserIds;
  c.lastActivityAt ||= Date.parse(raw.createdAt ?? "") || 0;
  return c;
}

function applyGroup(raw) {
  const c = applyConversation(raw.conversation);
  c.title = raw.name;
  c.group = { name: raw.name, members: raw.members.map((member) => ({ userId: member.userId, role: member.role })) };
  c.member = c.group.members.some((member) => member.userId === app.me.id);
  return c;
}

/** A message from the feed, a send's answer or history. Returns false for one we already have. */
function ingest(raw, live) {
  const m = normalize(raw);
  const c = conversation(m.conversationId);
  if (!c.known) scheduleInbox();
  if (m.senderUserId === app.me.id) app.outbox.settle(m.clientMsgId);
  const held = c.messages.get(m.seq);
  if (held) {
    if (held.attachments === undefined && m.attachments !== undefined) held.attachments = m.attachments;
    return false;
  }
  if (m.kind !== "TEXT") m.attachments = [];
  c.messages.set(m.seq, m);
  if (live && m.senderUserId !== app.me.id) {
    stopTyping(c, m.senderUserId);
    if (m.seq > c.lastSeq && m.seq > c.readSeq) c.unread += 1;
  }
  if (m.seq > c.lastSeq) {
    c.lastSeq = m.seq;
    c.lastMessage = m;
    c.lastActivityAt = Math.max(c.lastActivityAt, m.sentAt || Date.now());
  }
  if (m.kind === "SYSTEM" && live) onGroupChange(c, m);
  return true;
}

/** Membership and names change through SYSTEM messages: what is on screen follows them. */
function onGroupChange(c, m) {
  const event = m.system;
  if (!event) return;
  if (event.kind === "GROUP_RENAMED" || event.kind === "GROUP_CREATED") c.title = event.title || c.title;
  const gone = (event.kind === "MEMBER_REMOVED" && event.targetUserIds.includes(app.me.id)) || (event.kind === "MEMBER_LEFT" && event.actorUserId === app.me.id);
  if (gone) {
    c.member = false;
    c.group = null;
  } else if (event.kind === "MEMBERS_ADDED" && event.targetUserIds.includes(app.me.id)) {
    c.member = true;
  }
  if (c.member && (c.group || c.id === app.openId)) loadGroup(c).catch(notify);
  if (c.id === app.openId) renderThreadHeader();
}

/** Unread messages we can count ourselves: others' messages after the read watermark. */
const countUnread = (c, after) => [...c.messages.values()].filter((m) => m.seq > after && m.seq > c.readSeq && m.senderUserId !== app.me.id).length;

function applyInboxEntry(entry) {
  const c = applyConversation(entry.conversation);
  const lastSeq = BigInt(entry.conversation.lastSeq);
  const serverReadSeq = BigInt(entry.readSeq);
  const readAhead = c.readSeq > serverReadSeq;
  c.readSeq = maxSeq(c.readSeq, serverReadSeq);
  // The snapshot may be older than what the feed already brought (or than a markRead in flight).
  if (c.readSeq >= maxSeq(lastSeq, c.lastSeq)) c.unread = 0;
  else if (readAhead) c.unread = countUnread(c, c.readSeq);
  else c.unread = Number(entry.unreadCount) + countUnread(c, lastSeq);
  if (lastSeq >= c.lastSeq) {
    c.lastSeq = lastSeq;
    if (entry.lastMessage) c.lastMessage = normalize(entry.lastMessage);
  }
  c.lastActivityAt = Math.max(c.lastActivityAt, Date.parse(entry.lastActivityAt ?? "") || 0);
}

function scheduleInbox(delay = 150) {
  clearTimeout(app.inbox.timer);
  app.inbox.timer = setTimeout(() => void loadInbox(), delay);
}

async function loadInbox() {
  const current = app;
  if (current.inbox.running) {
    current.inbox.again = true;
    return;
  }
  current.inbox.running = true;
  try {
    const entries = [];
    let after = null;
    do {
      const page = await api.inbox(after);
      entries.push(...page.nodes);
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after && entries.length < 1000);
    if (current !== app) return;
    await ensureUsers(entries.flatMap((entry) => [...entry.conversation.memberUserIds, entry.lastMessage?.senderUserId]));
    if (current !== app) return;
    for (const entry of entries) applyInboxEntry(entry);
    current.inbox.loaded = true;
    watchPresence();
    renderInbox();
    renderThreadHeader();
    renderMessages(false);
    const open = openedConversation();
    if (open) markRead(open);
  } catch (error) {
    if (current === app) notify(error);
  } finally {
    current.inbox.running = false;
    if (current.inbox.again) {
      current.inbox.again = false;
      if (current === app) scheduleInbox();
    }
  }
}

async function ensureUsers(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !app.users.has(id));
  for (let i = 0; i < missing.length; i += 200) {
    for (const user of await api.users({ ids: missing.slice(i, i + 200) })) app.users.set(user.id, user);
  }
}

/** Users by username; names nobody has are listed in the error. */
async function usersNamed(names) {
  if (names.length === 0) return [];
  const found = await api.users({ names });
  for (const user of found) app.users.set(user.id, user);
  const missing = names.filter((name) => !found.some((user) => user.username === name));
  if (missing.length > 0) throw new Error(`There is no user named ${missing.map((name) => `“${name}”`).join(", ")}.`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Live feeds

function onFeed(event) {
  if (event.kind === "READY") {
    // A first start takes the heads as its cursors; a resumed feed catches up from ours instead.
    // Before the first READY there was nothing to resume from, so what is on screen is caught up by hand.
    if (!app.cursors) {
      app.cursors = new Map((event.heads ?? []).map((head) => [head.conversationId, BigInt(head.seq)]));
      scheduleInbox(0);
      for (const c of app.conversations.values()) if (c.history === "loaded") catchUpHistory(c).catch(notify);
    }
    return;
  }
  if (event.kind === "CAUGHT_UP") {
    scheduleInbox(0);
    const open = openedConversation();
    if (open) void loadReadState(open);
    return;
  }
  const raw = event.message;
  if (!raw) return;
  bump(app.cursors, raw.conversationId, BigInt(raw.seq));
  if (!ingest(raw, true)) return;
  const c = conversation(raw.conversationId);
  renderInbox();
  if (raw.senderUserId !== app.me.id && raw.kind === "TEXT") announce(c, raw);
  if (c.id === app.openId) {
    renderMessages(raw.senderUserId === app.me.id);
    renderTyping();
    markRead(c);
  }
}

function onReceipt(receipt) {
  const c = conversation(receipt.conversationId);
  const seq = BigInt(receipt.seq);
  if (receipt.userId === app.me.id) {
    // Read on another of our devices.
    if (receipt.kind !== "READ") return;
    c.readSeq = maxSeq(c.readSeq, seq);
    if (c.readSeq >= c.lastSeq) c.unread = 0;
    else scheduleInbox();
    renderInbox();
    return;
  }
  bump(receipt.kind === "READ" ? c.readers : c.delivered, receipt.userId, seq);
  if (c.id === app.openId) renderMessages(false);
}

function onTyping(conversationId, event) {
  if (event.userId === app.me.id) return;
  const c = conversation(conversationId);
  stopTyping(c, event.userId);
  if (event.typing) {
    const left = Date.parse(event.expiresAt ?? "") - Date.now();
    // Clocks differ: trust the server's expiry only within sane bounds.
    const ms = Number.isFinite(left) ? Math.min(Math.max(left, 1000), 10_000) : 6000;
    c.typing.set(
      event.userId,
      setTimeout(() => {
        c.typing.delete(event.userId);
        renderTyping();
      }, ms),
    );
  }
  renderTyping();
}

function stopTyping(c, userId) {
  clearTimeout(c.typing.get(userId));
  c.typing.delete(userId);
}

/** Presence of the people in the inbox's direct conversations: the ones on screen. */
function watchPresence() {
  const ids = [...new Set([...app.conversations.values()].filter((c) => c.known && c.kind === "DIRECT").map(peerOf))].filter((id) => id !== app.me.id).sort().slice(0, 500);
  const key = ids.join(",");
  if (key === app.presenceWatch.key) return;
  app.presenceWatch.stop?.();
  app.presenceWatch = { key, stop: null };
  if (ids.length === 0) return;
  app.presenceWatch.stop = app.live.subscribe(SUBSCRIPTIONS.presence, () => ({ u: ids }), {
    next: (data) => onPresence(data.presence),
    error: notifyErrors,
  });
}

/**
 * The server forgets when someone was last seen when it restarts, and a page starting afresh never
 * knew: what this browser saw last is kept and the later of the two is shown.
 */
function onPresence(p) {
  const online = p.status === "ONLINE";
  const reported = Date.parse(p.lastSeen ?? "") || 0;
  const seen = Math.max(reported, app.seen.get(p.userId) ?? 0, online ? Date.now() : 0);
  if (seen > (app.seen.get(p.userId) ?? 0)) {
    app.seen.set(p.userId, seen);
    saveSeen();
  }
  app.presence.set(p.userId, { online, lastSeen: seen });
  renderInbox();
  renderThreadHeader();
}

function watchTyping(c) {
  app.typingWatch?.();
  app.typingWatch = c ? app.live.subscribe(SUBSCRIPTIONS.typing, () => ({ c: c.id }), { next: (data) => onTyping(c.id, data.typing), error: notifyErrors }) : null;
}

function onLiveState(state) {
  if (!app) return;
  app.liveState = state;
  const label = $("connection");
  label.textContent = state === "online" ? "" : state === "connecting" ? "Connecting…" : "Offline, reconnecting…";
  label.className = `connection ${state}`;
  // Back online: what waits in the outbox goes now rather than at its next retry.
  if (state === "online") app.outbox.kick(true);
}

// ---------------------------------------------------------------------------------------------
// Actions

const openedConversation = () => (app?.openId ? app.conversations.get(app.openId) : undefined);

async function openThread(id) {
  const previous = openedConversation();
  if (previous) stopTypingOut();
  const c = conversation(id);
  app.openId = id;
  // The address names the conversation, so a reload (or a bookmark) comes back to it.
  history.replaceState(null, "", `#c/${encodeURIComponent(id)}`);
  watchTyping(c);
  $("composer").elements.namedItem("text").value = c.draft;
  $("members-panel").hidden = true;
  renderInbox();
  renderThread();
  $("composer").elements.namedItem("text").focus();
  const current = app;
  try {
    if (c.history === "none") await loadHistory(c, false);
    if (c.kind === "GROUP" && c.member && !c.group) await loadGroup(c);
    if (current !== app) return;
    markRead(c);
    await loadReadState(c);
  } catch (error) {
    if (current !== app) return;
    notify(error);
    // A conversation that is not ours (an old address): back to the inbox.
    if (error instanceof ApiError && ["NOT_A_MEMBER", "NOT_FOUND", "CONVERSATION_NOT_FOUND", "INVALID_ARGUMENT"].includes(error.code) && !c.known) {
      app.conversations.delete(c.id);
      closeThread();
    }
  }
}

function closeThread() {
  const closing = app.openId;
  stopTypingOut();
  app.openId = null;
  history.replaceState(null, "", location.pathname);
  watchTyping(null);
  renderInbox();
  renderThread();
  // Keyboard users land where they were in the list.
  const row = closing && $("inbox").querySelector(`[data-id="${CSS.escape(closing)}"]`);
  (row || $("new-chat").elements.namedItem("username")).focus();
}

async function loadHistory(c, older) {
  c.history = "loading";
  const current = app;
  const before = older && c.messages.size > 0 ? [...c.messages.keys()].reduce((a, b) => (a < b ? a : b)) : undefined;
  try {
    const page = await api.history(c.id, before);
    if (current !== app) return;
    await ensureUsers(page.messages.flatMap((m) => [m.senderUserId, m.system?.actorUserId, ...(m.system?.targetUserIds ?? [])]));
    for (const m of page.messages) ingest(m, false);
    c.hasOlder = page.hasOlder;
    c.history = "loaded";
  } catch (error) {
    c.history = "none";
    throw error;
  }
  if (c.id === app.openId) older ? renderOlder() : renderMessages(true);
}

/** The messages after the newest one we hold, page by page. */
async function catchUpHistory(c) {
  const current = app;
  let after = c.messages.size > 0 ? [...c.messages.keys()].reduce(maxSeq) : undefined;
  for (;;) {
    const page = await api.newer(c.id, after);
    if (current !== app) return;
    await ensureUsers(page.messages.flatMap((m) => [m.senderUserId, m.system?.actorUserId, ...(m.system?.targetUserIds ?? [])]));
    if (current !== app) return;
    for (const m of page.messages) ingest(m, false);
    if (!page.hasNewer || page.messages.length === 0) break;
    after = BigInt(page.messages.at(-1).seq);
  }
  if (c.id === app.openId) renderMessages(false);
}

async function loadGroup(c) {
  const current = app;
  const group = await api.group(c.id);
  if (current !== app) return;
  await ensureUsers(group.members.map((member) => member.userId));
  applyGroup(group);
  renderThreadHeader();
  renderMembers();
}

/** Who has read our recent messages: receipts only tell what happens from now on. */
async function loadReadState(c) {
  const own = [...c.messages.values()].filter((m) => m.senderUserId === app.me.id && m.kind === "TEXT").map((m) => m.seq);
  const seqs = own.sort((a, b) => (a < b ? -1 : 1)).slice(-READ_STATE_WINDOW);
  if (seqs.length === 0) return;
  const current = app;
  const readers = await api.readers(c.id, seqs);
  if (current !== app) return;
  for (const [seq, userIds] of readers) for (const userId of userIds) bump(c.readers, userId, seq);
  if (c.id === app.openId) renderMessages(false);
}

/** Moves the read watermark to the newest message while the conversation is on screen. */
function markRead(c) {
  if (c.id !== app.openId || document.visibilityState !== "visible") return;
  const target = c.lastSeq;
  if (target <= c.readSeq || target <= c.marking) return;
  c.marking = target;
  c.unread = 0;
  renderInbox();
  const current = app;
  api
    .markRead(c.id, target)
    .then((readSeq) => {
      if (current !== app) return;
      c.readSeq = maxSeq(c.readSeq, readSeq);
      // An inbox snapshot taken before the mark may have counted the messages again.
      c.unread = countUnread(c, c.readSeq);
      renderInbox();
    })
    .catch((error) => current === app && notify(error))
    .finally(() => {
      if (c.marking === target) c.marking = 0n;
    });
}

// ---------------------------------------------------------------------------------------------
// Sending (outbox.js keeps the order and the retries)

function send(c, text, files) {
  app.outbox.add({ clientMsgId: newClientMsgId(), conversationId: c.id, text, files });
  c.lastActivityAt = Date.now();
  renderMessages(true);
  renderInbox();
  app.outbox.kick(false);
}

function rerender(c) {
  if (c.id === app.openId) renderMessages(false);
  renderInbox();
}

/** Uploads the files not uploaded yet, then sends; the stored message is shown in place of the pending one. */
async function deliver(entry) {
  const current = app;
  for (let i = 0; i < entry.files.length; i++) {
    entry.attachmentIds[i] ??= await api.upload(entry.conversationId, entry.files[i]);
  }
  const answer = await api.send({ conversationId: entry.conversationId, clientMsgId: entry.clientMsgId, text: entry.text, attachmentIds: entry.attachmentIds });
  if (current === app) ingest(answer.message, false);
}

// ---------------------------------------------------------------------------------------------
// Starting conversations and managing groups

async function startChat(username) {
  const [found] = await usersNamed(parseUsernames(username).slice(0, 1));
  if (!found) throw new Error("Type the username of the person to write to.");
  if (found.id === app.me.id) throw new Error("That is you: type someone else’s username.");
  const c = applyConversation(await api.openDirect(found.id));
  c.lastActivityAt ||= Date.now();
  watchPresence();
  await openThread(c.id);
}

async function createGroup(name, usernames) {
  const members = await usersNamed(parseUsernames(usernames).filter((name) => name !== app.me.username));
  const c = applyGroup(await api.createGroup(name, members.map((user) => user.id)));
  c.lastActivityAt = Date.now();
  await openThread(c.id);
}

async function addMembers(c, usernames) {
  const names = parseUsernames(usernames);
  if (names.length === 0) throw new Error("Type one or more usernames.");
  const users = await usersNamed(names);
  applyGroup(await api.addMembers(c.id, users.map((user) => user.id)));
  renderThreadHeader();
  renderMembers();
}

async function removeMember(c, userId) {
  applyGroup(await api.removeMember(c.id, userId));
  renderThreadHeader();
  renderMembers();
}

async function leaveGroup(c) {
  await api.leaveGroup(c.id);
  c.member = false;
  c.group = null;
  $("members-panel").hidden = true;
  renderThread();
}

/** Tells the others we type, at most every few seconds, and that we stopped after a pause. */
function typingInput(c, text) {
  c.draft = text;
  const out = app.typingOut;
  if (!text.trim()) {
    stopTypingOut();
    return;
  }
  if (out.conversationId !== c.id || Date.now() - out.sentAt > TYPING_REFRESH_MS) {
    out.conversationId = c.id;
    out.sentAt = Date.now();
    api.setTyping(c.id, true).catch(() => {});
  }
  clearTimeout(out.idle);
  out.idle = setTimeout(stopTypingOut, TYPING_IDLE_MS);
}

function stopTypingOut() {
  const out = app.typingOut;
  clearTimeout(out.idle);
  if (out.conversationId) api.setTyping(out.conversationId, false).catch(() => {});
  out.conversationId = null;
  out.sentAt = 0;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderInbox() {
  if (!app) return;
  const list = [...app.conversations.values()].filter((c) => c.known).sort((a, b) => b.lastActivityAt - a.lastActivityAt);
  const focused = document.activeElement?.closest?.("#inbox .inbox-item")?.dataset.id;
  $("inbox").replaceChildren(...list.map(inboxRow));
  if (focused) $("inbox").querySelector(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  $("inbox-empty").hidden = list.length > 0 || !app.inbox.loaded;
  const unread = list.reduce((sum, c) => sum + c.unread, 0);
  document.title = unread > 0 ? `(${unread}) Chat` : "Chat";
}

function describeAttachments(attachments) {
  if (!attachments?.length) return "";
  if (attachments.length > 1) return `${attachments.length} files`;
  return attachments[0].contentType.startsWith("image/") ? "Photo" : attachments[0].fileName || "File";
}

function preview(c) {
  const waiting = app.outbox.of(c.id).at(-1);
  if (waiting) return `You: ${waiting.text || (waiting.files.length > 1 ? `${waiting.files.length} files` : (waiting.files[0]?.name ?? ""))}`;
  const last = c.lastMessage;
  if (!last) return c.kind === "GROUP" ? "No messages yet" : "";
  if (last.kind === "SYSTEM") return describeSystem(last.system, nameOf);
  if (last.kind === "TOMBSTONE") return "Message deleted";
  const text = last.text || describeAttachments(last.attachments) || "Attachment";
  const sender = last.senderUserId === app.me.id ? "You: " : c.kind === "GROUP" ? `${nameOf(last.senderUserId)}: ` : "";
  return `${sender}${text}`;
}

function inboxRow(c) {
  const name = title(c);
  const presence = c.kind === "DIRECT" ? app.presence.get(peerOf(c)) : undefined;
  const current = c.id === app.openId;
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", className: `inbox-item${c.unread > 0 ? " unread" : ""}`, ariaCurrent: current ? "true" : null, dataset: { id: c.id }, onclick: () => void openThread(c.id) },
      h("span", { className: `avatar${presence?.online ? " online" : ""}${c.kind === "GROUP" ? " group" : ""}`, ariaHidden: "true" }, name.slice(0, 1).toUpperCase()),
      h(
        "span",
        { className: "inbox-body" },
        h(
          "span",
          { className: "inbox-line" },
          h("span", { className: "inbox-name" }, name),
          presence?.online && h("span", { className: "sr-only" }, ", online"),
          h("span", { className: "inbox-time" }, shortTime(c.lastActivityAt)),
        ),
        h(
          "span",
          { className: "inbox-line" },
          h("span", { className: "inbox-preview" }, preview(c)),
          c.unread > 0 && h("span", { className: "badge", ariaHidden: "true" }, String(c.unread)),
          c.unread > 0 && h("span", { className: "sr-only" }, `, ${c.unread} unread`),
        ),
      ),
    ),
  );
}

function renderThread() {
  const c = openedConversation();
  document.body.classList.toggle("has-thread", Boolean(c));
  $("thread").hidden = !c;
  $("no-thread").hidden = Boolean(c);
  if (!c) return;
  renderThreadHeader();
  renderMessages(true);
  renderTyping();
  renderDraftFiles();
}

function renderThreadHeader() {
  const c = openedConversation();
  if (!c) return;
  $("thread-title").textContent = title(c);
  const status = $("thread-status");
  $("members-toggle").hidden = c.kind !== "GROUP";
  const composer = $("composer");
  const left = c.kind === "GROUP" && !c.member;
  for (const control of composer.elements) control.disabled = left;
  $("left-note").hidden = !left;
  if (c.kind === "GROUP") {
    status.textContent = left ? "You are no longer a member" : c.group ? `${c.group.members.length} members` : "";
    status.className = "thread-status";
    $("members-toggle").textContent = c.group ? `Members (${c.group.members.length})` : "Members";
    return;
  }
  const presence = app.presence.get(peerOf(c));
  status.textContent = !presence ? "" : presence.online ? "online" : lastSeen(presence.lastSeen);
  status.className = `thread-status${presence?.online ? " online" : ""}`;
}

function renderMembers() {
  const c = openedConversation();
  const panel = $("members-panel");
  if (!c || c.kind !== "GROUP" || panel.hidden) return;
  const members = c.group?.members ?? [];
  const myRank = ROLE_RANK[members.find((member) => member.userId === app.me.id)?.role] ?? 0;
  $("members-list").replaceChildren(
    ...members.map((member) => {
      const name = member.userId === app.me.id ? `${userName(app.me)} (you)` : userName(app.users.get(member.userId));
      const canRemove = member.userId !== app.me.id && myRank >= ROLE_RANK.ADMIN && myRank > (ROLE_RANK[member.role] ?? 0);
      return h(
        "li",
        { className: "member" },
        h("span", { className: "member-name" }, name),
        h("span", { className: "member-role" }, member.role.toLowerCase()),
        canRemove &&
          h(
            "button",
            {
              type: "button",
              className: "link danger",
              ariaLabel: `Remove ${name} from the group`,
              onclick: () => {
                $("members-error").textContent = "";
                removeMember(c, member.userId).catch((error) => ($("members-error").textContent = describeError(error)));
              },
            },
            "Remove",
          ),
      );
    }),
  );
  $("add-members").hidden = myRank < ROLE_RANK.ADMIN;
  $("rename-group").hidden = myRank < ROLE_RANK.ADMIN;
  const rename = $("rename-group").elements.namedItem("name");
  if (document.activeElement !== rename) rename.value = c.group?.name ?? c.title;
}

/** @param {boolean} toBottom also scroll down when the reader is not at the bottom (own send, opening) */
function renderMessages(toBottom) {
  const c = openedConversation();
  if (!c) return;
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const sorted = [...c.messages.values()].sort(bySeq);
  const items = [];
  let day = "";
  const separate = (ms) => {
    const label = dayLabel(ms || Date.now());
    if (label === day) return;
    day = label;
    items.push(h("li", { className: "day", role: "separator" }, h("span", {}, label)));
  };
  for (const m of sorted) {
    separate(m.sentAt);
    items.push(messageItem(c, m));
  }
  for (const entry of app.outbox.of(c.id)) {
    separate(entry.at);
    items.push(pendingItem(c, entry));
  }
  $("messages").replaceChildren(...items);
  $("older").hidden = !c.hasOlder;
  if (toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

/** Loading older messages keeps what was on screen where it was. */
function renderOlder() {
  const scroller = $("scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  renderMessages(false);
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
}

function others(c) {
  const members = c.kind === "DIRECT" ? c.memberUserIds : (c.group?.members.map((member) => member.userId) ?? [...c.readers.keys()]);
  return members.filter((id) => id !== app.me.id);
}

/** A glyph with its meaning for screen readers. */
const glyph = (className, label, text) => h("span", { className, title: label, role: "img", ariaLabel: label }, text);

/** ✓✓ once every other member has read it; ✓ when it is stored (and, if a device reported it, delivered). */
function tick(c, m) {
  const people = others(c);
  if (people.length > 0 && people.every((id) => (c.readers.get(id) ?? 0n) >= m.seq)) return glyph("tick read", "Read", "✓✓");
  const delivered = people.length > 0 && people.every((id) => (c.delivered.get(id) ?? 0n) >= m.seq);
  const label = delivered ? "Delivered" : "Sent";
  return glyph(`tick ${label.toLowerCase()}`, label, "✓");
}

function messageItem(c, m) {
  if (m.kind === "SYSTEM") return h("li", { className: "system", dataset: { seq: String(m.seq) } }, describeSystem(m.system, nameOf));
  const mine = m.senderUserId === app.me.id;
  const showSender = c.kind === "GROUP" && !mine;
  return h(
    "li",
    { className: `message ${mine ? "mine" : "theirs"}`, dataset: { seq: String(m.seq) } },
    showSender ? h("span", { className: "sender" }, nameOf(m.senderUserId)) : h("span", { className: "sr-only" }, `${mine ? "You" : nameOf(m.senderUserId)}: `),
    m.kind !== "TOMBSTONE" && m.attachments?.length > 0 && h("div", { className: "attachments" }, ...m.attachments.map(attachmentNode)),
    m.kind === "TOMBSTONE" ? h("p", { className: "text deleted" }, "Message deleted") : m.text && h("p", { className: "text" }, m.text),
    h("span", { className: "meta" }, h("time", { title: longTime(m.sentAt), dateTime: m.sentAt ? new Date(m.sentAt).toISOString() : undefined }, clockTime(m.sentAt)), mine && m.kind === "TEXT" && tick(c, m)),
  );
}

/** A signed URL for an attachment, asked for again when close to expiry. */
function downloadUrl(attachmentId) {
  let held = app.downloads.get(attachmentId);
  if (!held || (held.expiresAt && held.expiresAt - URL_MARGIN_MS < Date.now() && !held.pending)) {
    const current = app;
    held = { pending: true, expiresAt: 0, url: "", promise: null };
    held.promise = api.download(attachmentId).then(
      (answer) => {
        Object.assign(held, answer, { pending: false });
        return held;
      },
      (error) => {
        if (current === app) app.downloads.delete(attachmentId);
        throw error;
      },
    );
    app.downloads.set(attachmentId, held);
  }
  return held.promise;
}

/**
 * An image as a preview, any other file as a link with its size. One element per attachment, kept
 * across renders, so an image is not loaded again each time the conversation changes.
 */
function attachmentNode(attachment) {
  const known = app.attachmentNodes.get(attachment.id);
  if (known) return known;
  const name = attachment.fileName || (attachment.contentType.startsWith("image/") ? "image" : "file");
  let node;
  if (attachment.contentType.startsWith("image/")) {
    const image = h("img", { className: "attachment-image", alt: name, decoding: "async" });
    node = h("a", { className: "attachment image", title: `${name} (${fileSize(attachment.size)})`, ariaLabel: `Image ${name}, ${fileSize(attachment.size)}, download`, download: name }, image);
    downloadUrl(attachment.id).then(
      (held) => {
        image.src = held.url;
        node.href = held.url;
      },
      () => node.classList.add("broken"),
    );
  } else {
    node = h("a", { className: "attachment file", download: name, ariaLabel: `Download ${name}, ${fileSize(attachment.size)}` }, h("img", { className: "file-icon", src: "/file.svg", alt: "" }), h("span", { className: "file-name" }, name), h("span", { className: "file-size" }, fileSize(attachment.size)));
    downloadUrl(attachment.id).then(
      (held) => (node.href = held.url),
      () => node.classList.add("broken"),
    );
  }
  // A URL that has expired since the page got it is renewed before the browser follows it.
  node.addEventListener("click", (event) => {
    const held = app.downloads.get(attachment.id);
    if (held && !held.pending && held.expiresAt - URL_MARGIN_MS > Date.now()) return;
    event.preventDefault();
    app.downloads.delete(attachment.id);
    downloadUrl(attachment.id).then((fresh) => {
      node.href = fresh.url;
      node.click();
    }, notify);
  });
  app.attachmentNodes.set(attachment.id, node);
  return node;
}

function pendingItem(c, entry) {
  const failed = entry.state === "failed";
  const status = failed ? "" : entry.waiting ? "Waiting for the connection" : "Sending";
  return h(
    "li",
    { className: `message mine pending${failed ? " failed" : ""}${entry.waiting ? " waiting" : ""}`, dataset: { clientMsgId: entry.clientMsgId } },
    h("span", { className: "sr-only" }, "You: "),
    entry.files.length > 0 &&
      h(
        "div",
        { className: "attachments" },
        ...entry.files.map((file) => h("span", { className: "attachment file" }, h("img", { className: "file-icon", src: "/attach.svg", alt: "" }), h("span", { className: "file-name" }, file.name), h("span", { className: "file-size" }, fileSize(file.size)))),
      ),
    entry.text && h("p", { className: "text" }, entry.text),
    failed && h("p", { className: "send-error", role: "alert" }, describeError(entry.error)),
    h(
      "span",
      { className: "meta" },
      failed
        ? [
            h("button", { type: "button", className: "link retry", onclick: () => (app.outbox.retry(entry), rerender(c)) }, "Not sent. Retry"),
            h("button", { type: "button", className: "link retry", ariaLabel: "Delete this unsent message", onclick: () => (app.outbox.discard(entry), rerender(c)) }, "Delete"),
          ]
        : [entry.waiting && h("span", { className: "waiting-note" }, "Waiting for network"), glyph("tick sending", status, "…")],
    ),
  );
}

function renderDraftFiles() {
  const c = openedConversation();
  const files = c?.draftFiles ?? [];
  $("draft-files").hidden = files.length === 0;
  $("draft-files").replaceChildren(
    ...files.map((file, index) =>
      h(
        "li",
        { className: "draft-file" },
        h("span", { className: "file-name" }, file.name),
        h("span", { className: "file-size" }, fileSize(file.size)),
        h(
          "button",
          {
            type: "button",
            className: "link",
            ariaLabel: `Remove ${file.name}`,
            onclick: () => {
              c.draftFiles.splice(index, 1);
              renderDraftFiles();
              $("composer").elements.namedItem("text").focus();
            },
          },
          "✕",
        ),
      ),
    ),
  );
}

function renderTyping() {
  const c = openedConversation();
  $("typing").textContent = c ? typingLine([...c.typing.keys()].map(nameOf)) : "";
}

/** New messages are read out by screen readers here: the list itself is redrawn too often to be a live region. */
function announce(c, raw) {
  const where = c.id === app.openId ? "" : ` in ${title(c)}`;
  $("announcer").textContent = `${nameOf(raw.senderUserId)}${where}: ${raw.text || "sent a file"}`;
}

let noticeTimer = 0;
function notify(error) {
  // Unreachable while the connection is down: the top bar already says so.
  if (error instanceof TypeError && app && app.liveState !== "online") return;
  const notice = $("notice");
  notice.textContent = describeError(error);
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), 6000);
}

/** A subscription that cannot go on. */
function notifyErrors(errors) {
  const error = new GraphQLRequestError(errors);
  if (error.code === "DEVICE_REVOKED") session.end("This device was logged out.");
  else notify(error);
}

// ---------------------------------------------------------------------------------------------
// Screens

let signUpMode = false;

function showLogin(reason) {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = reason ?? "";
  setSignUpMode(signUpMode);
  $("login-form").elements.namedItem("username").focus();
}

function setSignUpMode(on) {
  signUpMode = on;
  $("tab-login").setAttribute("aria-selected", String(!on));
  $("tab-signup").setAttribute("aria-selected", String(on));
  $("display-name-field").hidden = !on;
  $("login-submit").textContent = on ? "Create account" : "Log in";
  $("login-form").elements.namedItem("password").autocomplete = on ? "new-password" : "current-password";
}

/** The conversation the address names (`#c/<id>`), if any. */
function addressedConversation() {
  const match = /^#c\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function startApp() {
  app = newAppState(session.user);
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("me").textContent = userName(app.me);
  $("me").title = `@${app.me.username}`;
  app.outbox.load();
  renderInbox();
  renderThread();
  app.live = new LiveConnection(session, onLiveState);
  app.live.subscribe(SUBSCRIPTIONS.feed, () => (app.cursors ? { resume: [...app.cursors].map(([conversationId, seq]) => ({ conversationId, seq: String(seq) })) } : {}), {
    next: (data) => onFeed(data.messages),
    error: notifyErrors,
  });
  app.live.subscribe(SUBSCRIPTIONS.receipts, () => ({}), { next: (data) => onReceipt(data.receipts), error: notifyErrors });
  // Relative times ("last seen 5 min ago") age; people still online are still being seen.
  app.clock = setInterval(() => {
    let changed = false;
    for (const [userId, presence] of app.presence) {
      if (!presence.online) continue;
      app.seen.set(userId, Date.now());
      changed = true;
    }
    if (changed) saveSeen();
    renderInbox();
    renderThreadHeader();
  }, 30_000);
  void loadInbox();
  const addressed = addressedConversation();
  if (addressed) void openThread(addressed);
  app.outbox.kick(false);
}

function stopApp() {
  if (!app) return;
  app.live?.close();
  clearInterval(app.clock);
  clearTimeout(app.inbox.timer);
  clearTimeout(app.typingOut.idle);
  app.outbox.stop();
  for (const c of app.conversations.values()) for (const timer of c.typing.values()) clearTimeout(timer);
  app = null;
  history.replaceState(null, "", location.pathname);
  $("inbox").replaceChildren();
  $("messages").replaceChildren();
  $("draft-files").replaceChildren();
  $("members-panel").hidden = true;
  if ($("group-dialog").open) $("group-dialog").close();
  document.title = "Chat";
}

// ---------------------------------------------------------------------------------------------
// Wiring

$("tab-login").addEventListener("click", () => setSignUpMode(false));
$("tab-signup").addEventListener("click", () => setSignUpMode(true));

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const field = (name) => form.elements.namedItem(name).value;
  const button = $("login-submit");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    // The server lower-cases usernames: "Alice" signs up (and logs in) as "alice".
    const username = field("username").trim();
    if (signUpMode) await session.signUp(username, field("password"), field("displayName").trim());
    else await session.logIn(username, field("password"));
    form.reset();
    startApp();
  } catch (error) {
    $("login-error").textContent = describeError(error);
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", () => {
  // Logging out leaves nothing of this user in the browser: unsent messages and last-seen times go too.
  if (app) {
    localStorage.removeItem(outboxKey(app.me.id));
    localStorage.removeItem(seenKey(app.me.id));
  }
  void session.logOut();
});

$("new-chat").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const input = form.elements.namedItem("username");
  $("new-chat-error").textContent = "";
  try {
    await startChat(input.value);
    input.value = "";
  } catch (error) {
    $("new-chat-error").textContent = describeError(error);
  }
});

$("new-group").addEventListener("click", () => {
  $("group-form").reset();
  $("group-error").textContent = "";
  $("group-dialog").showModal();
});
$("group-cancel").addEventListener("click", () => $("group-dialog").close());
$("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  $("group-error").textContent = "";
  try {
    // The name goes as typed: the server says what it accepts.
    await createGroup(form.elements.namedItem("name").value, form.elements.namedItem("members").value);
    $("group-dialog").close();
  } catch (error) {
    $("group-error").textContent = describeError(error);
  } finally {
    button.disabled = false;
  }
});

$("members-toggle").addEventListener("click", () => {
  const c = openedConversation();
  const panel = $("members-panel");
  panel.hidden = !panel.hidden;
  $("members-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  $("members-error").textContent = "";
  if (panel.hidden || !c) return;
  renderMembers();
  if (c.member) loadGroup(c).catch((error) => ($("members-error").textContent = describeError(error)));
  $("add-members").elements.namedItem("usernames").focus();
});

$("add-members").addEventListener("submit", async (event) => {
  event.preventDefault();
  const c = openedConversation();
  const input = $("add-members").elements.namedItem("usernames");
  $("members-error").textContent = "";
  if (!c) return;
  try {
    await addMembers(c, input.value);
    input.value = "";
  } catch (error) {
    $("members-error").textContent = describeError(error);
  }
});

$("rename-group").addEventListener("submit", async (event) => {
  event.preventDefault();
  const c = openedConversation();
  $("members-error").textContent = "";
  if (!c) return;
  try {
    // As typed: the server says what a name may be.
    applyGroup(await api.renameGroup(c.id, $("rename-group").elements.namedItem("name").value));
    renderThreadHeader();
    renderInbox();
  } catch (error) {
    $("members-error").textContent = describeError(error);
  }
});

$("leave-group").addEventListener("click", async () => {
  const c = openedConversation();
  if (!c) return;
  $("members-error").textContent = "";
  try {
    await leaveGroup(c);
  } catch (error) {
    $("members-error").textContent = describeError(error);
  }
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const c = openedConversation();
  const input = $("composer").elements.namedItem("text");
  const text = input.value;
  const files = c?.draftFiles ?? [];
  if (!c || (!text.trim() && files.length === 0)) return;
  input.value = "";
  c.draft = "";
  c.draftFiles = [];
  renderDraftFiles();
  stopTypingOut();
  send(c, text, files);
});

$("composer").elements.namedItem("text").addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; not while an input method is composing a character.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("composer").elements.namedItem("text").addEventListener("input", (event) => {
  const c = openedConversation();
  if (c) typingInput(c, event.currentTarget.value);
});

/** Files picked, pasted or dropped wait above the composer for the next message. */
function addDraftFiles(files) {
  const c = openedConversation();
  if (!c || files.length === 0 || !c.member) return false;
  c.draftFiles.push(...files);
  renderDraftFiles();
  $("composer").elements.namedItem("text").focus();
  return true;
}

$("attach").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", (event) => {
  const input = event.currentTarget;
  addDraftFiles([...input.files]);
  input.value = "";
});
$("composer").elements.namedItem("text").addEventListener("paste", (event) => {
  if (addDraftFiles([...(event.clipboardData?.files ?? [])])) event.preventDefault();
});
$("thread").addEventListener("dragover", (event) => {
  if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
});
$("thread").addEventListener("drop", (event) => {
  if (addDraftFiles([...(event.dataTransfer?.files ?? [])])) event.preventDefault();
});

$("older").addEventListener("click", () => {
  const c = openedConversation();
  if (c && c.history === "loaded") loadHistory(c, true).catch(notify);
});

// Scrolling up to the top brings the page before it.
$("scroller").addEventListener("scroll", () => {
  const c = openedConversation();
  if (c && c.hasOlder && c.history === "loaded" && $("scroller").scrollTop < SCROLL_BACK_PX) loadHistory(c, true).catch(notify);
});

$("back").addEventListener("click", closeThread);

// Keyboard: arrows move through the conversation list, Alt+arrows switch conversations from
// anywhere, Escape leaves the open conversation for the list.
$("inbox").addEventListener("keydown", (event) => {
  const rows = [...$("inbox").querySelectorAll(".inbox-item")];
  const at = rows.indexOf(document.activeElement);
  const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
  if (next === undefined || rows.length === 0) return;
  event.preventDefault();
  rows[Math.max(0, Math.min(rows.length - 1, next))].focus();
});

document.addEventListener("keydown", (event) => {
  if (!app || $("group-dialog").open) return;
  if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    const rows = [...$("inbox").querySelectorAll(".inbox-item")];
    if (rows.length === 0) return;
    event.preventDefault();
    const at = rows.findIndex((row) => row.dataset.id === app.openId);
    const next = rows[Math.max(0, Math.min(rows.length - 1, at + (event.key === "ArrowDown" ? 1 : -1)))];
    void openThread(next.dataset.id);
    return;
  }
  if (event.key === "Escape" && app.openId) {
    if (!$("members-panel").hidden) {
      $("members-panel").hidden = true;
      $("members-toggle").setAttribute("aria-expanded", "false");
      $("members-toggle").focus();
      return;
    }
    event.preventDefault();
    closeThread();
  }
});

addEventListener("hashchange", () => {
  const addressed = addressedConversation();
  if (app && addressed && addressed !== app.openId) void openThread(addressed);
});

// The browser says the network is back: waiting messages go now.
addEventListener("online", () => app?.outbox.kick(true));

document.addEventListener("visibilitychange", () => {
  const c = openedConversation();
  if (c) markRead(c);
});

if (session.user) startApp();
else showLogin("");
