// DOM building and wording. User text only ever becomes a text node, never markup.

/**
 * An element with properties (className, type, title, dataset, hidden, disabled, on<event>) and children:
 * strings become text nodes, null/false/undefined are skipped.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("aria")) element.setAttribute(`aria-${key.slice(4).toLowerCase()}`, String(value));
    else if (key === "role") element.setAttribute("role", value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

export const userName = (user) => (user ? user.displayName || user.username : "Unknown user");

export const maxSeq = (a, b) => (a > b ? a : b);

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const shortDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** Today: the time; earlier: the date. For inbox rows. */
export function shortTime(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  return date.toDateString() === new Date().toDateString() ? timeOfDay.format(date) : shortDate.format(date);
}

const dayOfWeek = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const dayOfYear = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

/** The heading over a day's messages: "Today", "Yesterday", else the date (with the year if not this one). */
export function dayLabel(ms) {
  const date = new Date(ms);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return (date.getFullYear() === today.getFullYear() ? dayOfWeek : dayOfYear).format(date);
}

/** 1234567 → "1.2 MB". */
export function fileSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "@Bob, carol dave" → ["bob", "carol", "dave"]: usernames as the server stores them, each once. */
export function parseUsernames(text) {
  return [...new Set(text.split(/[\s,;]+/).map((name) => name.replace(/^@/, "").toLowerCase()).filter(Boolean))];
}

export const clockTime = (ms) => (ms ? timeOfDay.format(new Date(ms)) : "");
export const longTime = (ms) => (ms ? fullDate.format(new Date(ms)) : "");

export function lastSeen(ms) {
  if (!ms) return "offline";
  const minutes = Math.floor((Date.now() - ms) / 60_000);
  if (minutes < 1) return "last seen just now";
  if (minutes < 60) return `last seen ${minutes} min ago`;
  if (minutes < 24 * 60) return `last seen ${Math.floor(minutes / 60)} h ago`;
  return `last seen ${shortDate.format(new Date(ms))}`;
}

/** A SYSTEM message in words; `name` turns a user id into a name. */
export function describeSystem(system, name) {
  if (!system) return "The conversation changed";
  const actor = name(system.actorUserId);
  const targets = system.targetUserIds.map(name).join(", ");
  switch (system.kind) {
    case "GROUP_CREATED":
      return `${actor} created the group “${system.title}”`;
    case "GROUP_RENAMED":
      return `${actor} renamed the group to “${system.title}”`;
    case "MEMBERS_ADDED":
      return `${actor} added ${targets}`;
    case "MEMBER_LEFT":
      return `${actor} left`;
    case "MEMBER_REMOVED":
      return `${actor} removed ${targets}`;
    case "ROLE_CHANGED":
      return `${actor} changed the role of ${targets}`;
    default:
      return "The conversation changed";
  }
}

export function typingLine(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

/** What the server's error means to a person; the codes are `ErrorReason` names. */
export function describeError(error) {
  switch (error?.code) {
    case "BAD_CREDENTIALS":
      return "Wrong username or password.";
    case "USERNAME_TAKEN":
      return "That username is taken.";
    case "USERNAME_INVALID":
      return "A username is 3–32 characters: a–z, 0–9, _ . -";
    case "PASSWORD_TOO_WEAK":
      return "A password needs at least 8 characters.";
    case "RATE_LIMITED":
      return "Slow down a little, then try again.";
    case "TEXT_TOO_LONG":
      return "That message is too long.";
    case "NOT_A_MEMBER":
      return "You are not a member of that conversation.";
    case undefined:
      return error instanceof TypeError ? "Cannot reach the server: check the connection and try again." : String(error?.message ?? error);
    default:
      // The server's own words say what to fix ("a group has at most 100 members").
      return error.message ? error.message[0].toUpperCase() + error.message.slice(1) : String(error.code);
  }
}

/** An idempotency key for sendMessage; getRandomValues also works on plain-HTTP hosts, unlike randomUUID. */
export function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
