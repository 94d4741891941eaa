// The web client: log in, inbox, conversation, live updates. Plain DOM, no framework.
// Everything the server pushes arrives on one WebSocket (live.js); everything else is a POST.

import { LiveConnection } from "./live.js";
import { GraphQLRequestError, Session } from "./session.js";
import { clockTime, describeError, describeSystem, h, lastSeen, longTime, maxSeq, newClientMsgId, shortTime, typingLine, userName } from "./format.js";

const MESSAGE = "id conversationId seq senderUserId clientMsgId kind text sentAt system { kind actorUserId targetUserIds title }";
const CONVERSATION = "id kind title lastSeq memberUserIds createdAt";
const USER = "id username displayName";

const Q = {
  inbox: `query($after: String) { inbox(first: 100, after: $after) {
    nodes { conversation { ${CONVERSATION} } lastMessage { ${MESSAGE} } readSeq unreadCount lastActivityAt }
    pageInfo { hasNextPage endCursor } } }`,
  history: `query($c: ID!, $before: String) { messages(conversationId: $c, last: 50, before: $before) {
    nodes { ${MESSAGE} } pageInfo { hasPreviousPage } } }`,
  newer: `query($c: ID!, $after: String) { messages(conversationId: $c, first: 200, after: $after) {
    nodes { ${MESSAGE} } pageInfo { hasNextPage } } }`,
  users: `query($ids: [ID!], $names: [String!]) { users(ids: $ids, usernames: $names) { ${USER} } }`,
  group: `query($id: ID!) { group(id: $id) { name members { userId } } }`,
  openDirect: `mutation($u: ID!) { openDirectConversation(userId: $u) { ${CONVERSATION} } }`,
  send: `mutation($c: ID!, $id: String!, $t: String!) { sendMessage(conversationId: $c, clientMsgId: $id, text: $t) { message { ${MESSAGE} } } }`,
  markRead: `mutation($c: ID!, $s: UInt64!) { markRead(conversationId: $c, seq: $s) { readSeq } }`,
  typing: `mutation($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, typing: $t) }`,
  feed: `subscription($resume: [ConversationCursorInput!]) { messages(resume: $resume) {
    kind heads { conversationId seq } message { ${MESSAGE} } } }`,
  receipts: `subscription { receipts { conversationId userId kind seq } }`,
  presence: `subscription($u: [ID!]!) { presence(userIds: $u) { userId status lastSeen } }`,
  typingFeed: `subscription($c: ID!) { typing(conversationId: $c) { userId typing expiresAt } }`,
};

/** Own messages whose readers are looked up when a conversation opens (receipts then keep it current). */
const READ_STATE_WINDOW = 20;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 5000;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const session = new Session((reason) => {
  stopApp();
  showLogin(reason);
});

/** Everything about the logged-in user; replaced whole at each login so late answers of a past session are ignored. */
let app = null;

function newAppState(me) {
  return {
    me,
    live: /** @type {LiveConnection | null} */ (null),
    conversations: new Map(),
    users: new Map([[me.id, me]]),
    presence: new Map(),
    openId: null,
    /** Per conversation, the last seq the feed gave us; null until the feed's first READY. */
    cursors: /** @type {Map<string, bigint> | null} */ (null),
    inbox: { timer: 0, running: false, again: false },
    presenceWatch: { key: "", stop: null },
    typingWatch: null,
    typingOut: { conversationId: null, sentAt: 0, idle: 0 },
    clock: 0,
  };
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
      groupMembers: null,
      lastSeq: 0n,
      readSeq: 0n,
      unread: 0,
      lastMessage: null,
      lastActivityAt: 0,
      messages: new Map(),
      pending: new Map(),
      /** Other members' read watermarks, and their devices' delivery marks (highest per user). */
      readers: new Map(),
      delivered: new Map(),
      typing: new Map(),
      history: "none",
      hasOlder: false,
      marking: 0n,
      draft: "",
    };
    app.conversations.set(id, c);
  }
  return c;
}

const normalize = (raw) => ({ ...raw, seq: BigInt(raw.seq), sentAt: raw.sentAt ? Date.parse(raw.sentAt) : 0 });
const peerOf = (c) => c.memberUserIds.find((id) => id !== app.me.id) ?? app.me.id;
const nameOf = (id) => (id === app.me.id ? "You" : userName(app.users.get(id)));
const title = (c) => (c.kind === "GROUP" ? c.title || "Group" : userName(app.users.get(peerOf(c))));
const bump = (map, key, seq) => map.set(key, maxSeq(map.get(key) ?? 0n, seq));

function applyConversation(raw) {
  const c = conversation(raw.id);
  c.known = true;
  c.kind = raw.kind;
  c.title = raw.title;
  c.memberUserIds = raw.memberUserIds;
  c.lastActivityAt ||= Date.parse(raw.createdAt ?? "") || 0;
  return c;
}

/** A message from the feed, a send's answer or history. Returns false for one we already have. */
function ingest(raw, live) {
  const m = normalize(raw);
  const c = conversation(m.conversationId);
  if (!c.known) scheduleInbox();
  if (m.senderUserId === app.me.id) c.pending.delete(m.clientMsgId);
  if (c.messages.has(m.seq)) return false;
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
  return true;
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
      const data = await session.request(Q.inbox, { after });
      entries.push(...data.inbox.nodes);
      after = data.inbox.pageInfo.hasNextPage ? data.inbox.pageInfo.endCursor : null;
    } while (after && entries.length < 1000);
    if (current !== app) return;
    await ensureUsers(entries.flatMap((entry) => [...entry.conversation.memberUserIds, entry.lastMessage?.senderUserId]));
    if (current !== app) return;
    for (const entry of entries) applyInboxEntry(entry);
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
    const data = await session.request(Q.users, { ids: missing.slice(i, i + 200) });
    for (const user of data.users) app.users.set(user.id, user);
  }
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
  app.presenceWatch.stop = app.live.subscribe(Q.presence, () => ({ u: ids }), {
    next: (data) => {
      const p = data.presence;
      app.presence.set(p.userId, { online: p.status === "ONLINE", lastSeen: Date.parse(p.lastSeen ?? "") || 0 });
      renderInbox();
      renderThreadHeader();
    },
    error: notifyErrors,
  });
}

function watchTyping(c) {
  app.typingWatch?.();
  app.typingWatch = c ? app.live.subscribe(Q.typingFeed, () => ({ c: c.id }), { next: (data) => onTyping(c.id, data.typing), error: notifyErrors }) : null;
}

function onLiveState(state) {
  const label = $("connection");
  label.textContent = state === "online" ? "" : state === "connecting" ? "Connecting…" : "Offline, reconnecting…";
  label.className = `connection ${state}`;
}

// ---------------------------------------------------------------------------------------------
// Actions

const openedConversation = () => (app?.openId ? app.conversations.get(app.openId) : undefined);

async function openThread(id) {
  const previous = openedConversation();
  if (previous) stopTypingOut();
  const c = conversation(id);
  app.openId = id;
  watchTyping(c);
  $("composer").elements.namedItem("text").value = c.draft;
  renderInbox();
  renderThread();
  $("composer").elements.namedItem("text").focus();
  const current = app;
  try {
    if (c.history === "none") await loadHistory(c, false);
    if (c.kind === "GROUP" && !c.groupMembers) await loadGroup(c);
    if (current !== app) return;
    markRead(c);
    await loadReadState(c);
  } catch (error) {
    if (current === app) notify(error);
  }
}

function closeThread() {
  stopTypingOut();
  app.openId = null;
  watchTyping(null);
  renderInbox();
  renderThread();
}

async function loadHistory(c, older) {
  c.history = "loading";
  const current = app;
  const before = older && c.messages.size > 0 ? String([...c.messages.keys()].reduce((a, b) => (a < b ? a : b))) : null;
  try {
    const data = await session.request(Q.history, { c: c.id, before });
    if (current !== app) return;
    const nodes = data.messages.nodes;
    await ensureUsers(nodes.flatMap((m) => [m.senderUserId, ...(m.system?.targetUserIds ?? [])]));
    for (const m of nodes) ingest(m, false);
    c.hasOlder = data.messages.pageInfo.hasPreviousPage;
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
  let after = c.messages.size > 0 ? String([...c.messages.keys()].reduce(maxSeq)) : null;
  for (;;) {
    const data = await session.request(Q.newer, { c: c.id, after });
    if (current !== app) return;
    await ensureUsers(data.messages.nodes.flatMap((m) => [m.senderUserId, ...(m.system?.targetUserIds ?? [])]));
    if (current !== app) return;
    for (const m of data.messages.nodes) ingest(m, false);
    if (!data.messages.pageInfo.hasNextPage || data.messages.nodes.length === 0) break;
    after = data.messages.nodes.at(-1).seq;
  }
  if (c.id === app.openId) renderMessages(false);
}

async function loadGroup(c) {
  const data = await session.request(Q.group, { id: c.id });
  c.groupMembers = data.group.members.map((member) => member.userId);
  await ensureUsers(c.groupMembers);
  renderThreadHeader();
}

/** Who has read our recent messages: receipts only tell what happens from now on. */
async function loadReadState(c) {
  const own = [...c.messages.values()].filter((m) => m.senderUserId === app.me.id && m.kind === "TEXT").map((m) => m.seq);
  const seqs = own.sort((a, b) => (a < b ? -1 : 1)).slice(-READ_STATE_WINDOW);
  if (seqs.length === 0) return;
  const current = app;
  // Seqs are BigInts, so the document holds digits only.
  const fields = seqs.map((seq, i) => `r${i}: messageReaders(conversationId: $c, seq: "${seq}") { userId }`).join(" ");
  const data = await session.request(`query($c: ID!) { ${fields} }`, { c: c.id });
  if (current !== app) return;
  seqs.forEach((seq, i) => {
    for (const reader of data[`r${i}`]) bump(c.readers, reader.userId, seq);
  });
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
  session
    .request(Q.markRead, { c: c.id, s: String(target) })
    .then((data) => {
      if (current !== app) return;
      c.readSeq = maxSeq(c.readSeq, BigInt(data.markRead.readSeq));
      // An inbox snapshot taken before the mark may have counted the messages again.
      c.unread = countUnread(c, c.readSeq);
      renderInbox();
    })
    .catch((error) => current === app && notify(error))
    .finally(() => {
      if (c.marking === target) c.marking = 0n;
    });
}

async function send(c, text) {
  const pending = { clientMsgId: newClientMsgId(), text, failed: false, error: "", at: Date.now() };
  c.pending.set(pending.clientMsgId, pending);
  c.lastActivityAt = pending.at;
  renderMessages(true);
  renderInbox();
  await deliver(c, pending);
}

/** Sends (or sends again: the same clientMsgId makes a retry safe) one message. */
async function deliver(c, pending) {
  const current = app;
  pending.failed = false;
  try {
    const data = await session.request(Q.send, { c: c.id, id: pending.clientMsgId, t: pending.text });
    if (current !== app) return;
    ingest(data.sendMessage.message, false);
  } catch (error) {
    if (current !== app) return;
    pending.failed = true;
    pending.error = describeError(error);
  }
  if (c.id === app.openId) renderMessages(false);
  renderInbox();
}

async function startChat(username) {
  const name = username.trim().replace(/^@/, "").toLowerCase();
  const found = (await session.request(Q.users, { names: [name] })).users[0];
  if (!found) throw new Error(`There is no user named “${name}”.`);
  app.users.set(found.id, found);
  const c = applyConversation((await session.request(Q.openDirect, { u: found.id })).openDirectConversation);
  c.lastActivityAt ||= Date.now();
  watchPresence();
  await openThread(c.id);
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
    session.request(Q.typing, { c: c.id, t: true }).catch(() => {});
  }
  clearTimeout(out.idle);
  out.idle = setTimeout(stopTypingOut, TYPING_IDLE_MS);
}

function stopTypingOut() {
  const out = app.typingOut;
  clearTimeout(out.idle);
  if (out.conversationId) session.request(Q.typing, { c: out.conversationId, t: false }).catch(() => {});
  out.conversationId = null;
  out.sentAt = 0;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderInbox() {
  if (!app) return;
  const list = [...app.conversations.values()].filter((c) => c.known).sort((a, b) => b.lastActivityAt - a.lastActivityAt);
  $("inbox").replaceChildren(...list.map(inboxRow));
  $("inbox-empty").hidden = list.length > 0;
  const unread = list.reduce((sum, c) => sum + c.unread, 0);
  document.title = unread > 0 ? `(${unread}) Chat` : "Chat";
}

function inboxRow(c) {
  const name = title(c);
  const presence = c.kind === "DIRECT" ? app.presence.get(peerOf(c)) : undefined;
  const last = c.lastMessage;
  let preview = "";
  if (last) preview = last.kind === "SYSTEM" ? describeSystem(last.system, nameOf) : last.kind === "TOMBSTONE" ? "Message deleted" : `${last.senderUserId === app.me.id ? "You: " : ""}${last.text}`;
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", className: `inbox-item${c.unread > 0 ? " unread" : ""}`, ariaCurrent: c.id === app.openId ? "true" : null, dataset: { id: c.id }, onclick: () => void openThread(c.id) },
      h("span", { className: `avatar${presence?.online ? " online" : ""}`, ariaHidden: "true" }, name.slice(0, 1).toUpperCase()),
      h(
        "span",
        { className: "inbox-body" },
        h("span", { className: "inbox-line" }, h("span", { className: "inbox-name" }, name), h("span", { className: "inbox-time" }, shortTime(c.lastActivityAt))),
        h(
          "span",
          { className: "inbox-line" },
          h("span", { className: "inbox-preview" }, preview),
          c.unread > 0 && h("span", { className: "badge", ariaLabel: `${c.unread} unread` }, String(c.unread)),
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
}

function renderThreadHeader() {
  const c = openedConversation();
  if (!c) return;
  $("thread-title").textContent = title(c);
  const status = $("thread-status");
  if (c.kind === "GROUP") {
    status.textContent = c.groupMembers ? `${c.groupMembers.length} members` : "";
    status.className = "thread-status";
    return;
  }
  const presence = app.presence.get(peerOf(c));
  status.textContent = !presence ? "" : presence.online ? "online" : lastSeen(presence.lastSeen);
  status.className = `thread-status${presence?.online ? " online" : ""}`;
}

/** @param {boolean} toBottom also scroll down when the reader is not at the bottom (own send, opening) */
function renderMessages(toBottom) {
  const c = openedConversation();
  if (!c) return;
  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const sorted = [...c.messages.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  $("messages").replaceChildren(...sorted.map((m) => messageItem(c, m)), ...[...c.pending.values()].map((p) => pendingItem(c, p)));
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
  const members = c.kind === "DIRECT" ? c.memberUserIds : (c.groupMembers ?? [...c.readers.keys()]);
  return members.filter((id) => id !== app.me.id);
}

/** ✓✓ once every other member has read it; ✓ when it is stored (and, if a device reported it, delivered). */
function tick(c, m) {
  const people = others(c);
  if (people.length > 0 && people.every((id) => (c.readers.get(id) ?? 0n) >= m.seq)) return h("span", { className: "tick read", title: "Read", ariaLabel: "Read" }, "✓✓");
  const delivered = people.length > 0 && people.every((id) => (c.delivered.get(id) ?? 0n) >= m.seq);
  const label = delivered ? "Delivered" : "Sent";
  return h("span", { className: `tick ${label.toLowerCase()}`, title: label, ariaLabel: label }, "✓");
}

function messageItem(c, m) {
  if (m.kind === "SYSTEM") return h("li", { className: "system", dataset: { seq: String(m.seq) } }, describeSystem(m.system, nameOf));
  const mine = m.senderUserId === app.me.id;
  return h(
    "li",
    { className: `message ${mine ? "mine" : "theirs"}`, dataset: { seq: String(m.seq) } },
    c.kind === "GROUP" && !mine && h("span", { className: "sender" }, nameOf(m.senderUserId)),
    m.kind === "TOMBSTONE" ? h("p", { className: "text deleted" }, "Message deleted") : h("p", { className: "text" }, m.text),
    h("span", { className: "meta" }, h("time", { title: longTime(m.sentAt) }, clockTime(m.sentAt)), mine && m.kind === "TEXT" && tick(c, m)),
  );
}

function pendingItem(c, p) {
  return h(
    "li",
    { className: `message mine pending${p.failed ? " failed" : ""}` },
    h("p", { className: "text" }, p.text),
    h(
      "span",
      { className: "meta" },
      p.failed
        ? h("button", { type: "button", className: "link retry", title: p.error, onclick: () => void deliver(c, p) }, "Not sent. Retry")
        : h("span", { className: "tick sending", title: "Sending", ariaLabel: "Sending" }, "…"),
    ),
  );
}

function renderTyping() {
  const c = openedConversation();
  $("typing").textContent = c ? typingLine([...c.typing.keys()].map(nameOf)) : "";
}

let noticeTimer = 0;
function notify(error) {
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

function startApp() {
  app = newAppState(session.user);
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("me").textContent = userName(app.me);
  $("me").title = `@${app.me.username}`;
  renderInbox();
  renderThread();
  app.live = new LiveConnection(session, onLiveState);
  app.live.subscribe(Q.feed, () => (app.cursors ? { resume: [...app.cursors].map(([conversationId, seq]) => ({ conversationId, seq: String(seq) })) } : {}), {
    next: (data) => onFeed(data.messages),
    error: notifyErrors,
  });
  app.live.subscribe(Q.receipts, () => ({}), { next: (data) => onReceipt(data.receipts), error: notifyErrors });
  // Relative times ("last seen 5 min ago") age.
  app.clock = setInterval(() => {
    renderInbox();
    renderThreadHeader();
  }, 30_000);
  void loadInbox();
}

function stopApp() {
  if (!app) return;
  app.live?.close();
  clearInterval(app.clock);
  clearTimeout(app.inbox.timer);
  clearTimeout(app.typingOut.idle);
  for (const c of app.conversations.values()) for (const timer of c.typing.values()) clearTimeout(timer);
  app = null;
  $("inbox").replaceChildren();
  $("messages").replaceChildren();
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
    const username = field("username").trim().toLowerCase();
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

$("logout").addEventListener("click", () => void session.logOut());

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

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const c = openedConversation();
  const input = $("composer").elements.namedItem("text");
  const text = input.value;
  if (!c || !text.trim()) return;
  input.value = "";
  c.draft = "";
  stopTypingOut();
  void send(c, text);
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

$("older").addEventListener("click", () => {
  const c = openedConversation();
  if (c && c.history === "loaded") loadHistory(c, true).catch(notify);
});

$("back").addEventListener("click", closeThread);

document.addEventListener("visibilitychange", () => {
  const c = openedConversation();
  if (c) markRead(c);
});

if (session.user) startApp();
else showLogin("");
