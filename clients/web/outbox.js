// The outbox: a message is shown at once and sent when the server can be reached, one at a time in
// the order written, always with the clientMsgId it got when written, so a send whose answer was lost
// is answered with the stored original the next time, never stored twice.

import { isTransient } from "./api.js";

/** Retries while the server cannot be reached: from 1 s, doubling, up to this. */
const MAX_BACKOFF_MS = 30_000;

/**
 * @typedef {object} OutboxEntry
 * @property {string} clientMsgId
 * @property {string} conversationId
 * @property {string} text
 * @property {File[]} files
 * @property {(string | null)[]} attachmentIds one per file once uploaded (kept, so a retry does not upload again)
 * @property {number} at when it was written (ms)
 * @property {"queued" | "sending" | "failed" | "done"} state
 * @property {boolean} waiting the server could not be reached at the last try
 * @property {unknown} error why it failed, for "failed"
 */

export class Outbox {
  /**
   * @param {object} options
   * @param {(entry: OutboxEntry) => Promise<unknown>} options.deliver uploads and sends; resolves once the server has it
   * @param {(entry: OutboxEntry) => void} options.onChange an entry changed (sent, waiting, failed, settled)
   * @param {{ getItem(key: string): string | null, setItem(key: string, value: string): void, removeItem(key: string): void }} options.storage
   * @param {string} options.key where text messages still waiting are kept
   * @param {() => number} [options.random]
   */
  constructor({ deliver, onChange, storage, key, random = Math.random }) {
    this.deliver = deliver;
    this.onChange = onChange;
    this.storage = storage;
    this.key = key;
    this.random = random;
    /** @type {OutboxEntry[]} */
    this.entries = [];
    this.running = false;
    this.timer = 0;
    this.attempts = 0;
    this.stopped = false;
  }

  /** The entries of one conversation not yet stored by the server, in the order written. */
  of(conversationId) {
    return this.entries.filter((entry) => entry.conversationId === conversationId);
  }

  /** @returns {OutboxEntry} */
  add({ clientMsgId, conversationId, text, files = [], at = Date.now() }) {
    /** @type {OutboxEntry} */
    const entry = { clientMsgId, conversationId, text, files, attachmentIds: files.map(() => null), at, state: "queued", waiting: false, error: null };
    this.entries.push(entry);
    this.save();
    return entry;
  }

  /** The server has this message (a send's answer, or the feed brought it first): it leaves the outbox. */
  settle(clientMsgId) {
    const entry = this.entries.find((candidate) => candidate.clientMsgId === clientMsgId);
    if (!entry) return undefined;
    entry.state = "done";
    this.entries = this.entries.filter((other) => other !== entry);
    this.save();
    return entry;
  }

  /** A failed entry goes again, in its place. */
  retry(entry) {
    if (entry.state !== "failed") return;
    entry.state = "queued";
    entry.error = null;
    entry.waiting = false;
    this.save();
    this.kick(true);
  }

  discard(entry) {
    this.entries = this.entries.filter((other) => other !== entry);
    this.save();
  }

  /**
   * Sends what waits, unless a send is under way or a retry is scheduled.
   * @param {boolean} now drop the wait of a scheduled retry (the connection is back)
   */
  kick(now) {
    if (this.stopped) return;
    if (now) {
      clearTimeout(this.timer);
      this.timer = 0;
    }
    if (this.running || this.timer) return;
    void this.drain();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async drain() {
    this.running = true;
    try {
      for (;;) {
        const entry = this.entries.find((candidate) => candidate.state === "queued");
        if (!entry || this.stopped) return;
        entry.state = "sending";
        try {
          await this.deliver(entry);
          if (this.stopped) return;
          this.attempts = 0;
          for (const other of this.entries) other.waiting = false;
          this.settle(entry.clientMsgId);
        } catch (error) {
          if (this.stopped) return;
          if (entry.state === "done") continue;
          if (isTransient(error)) {
            // Unreachable (or asked to wait): this one and all behind it wait, in order.
            entry.state = "queued";
            for (const other of this.entries) if (other.state === "queued") other.waiting = true;
            const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempts++);
            this.timer = setTimeout(() => {
              this.timer = 0;
              this.kick(false);
            }, ceiling / 2 + this.random() * (ceiling / 2));
            this.onChange(entry);
            return;
          }
          entry.state = "failed";
          entry.error = error;
          this.save();
        }
        this.onChange(entry);
      }
    } finally {
      this.running = false;
    }
  }

  /** Text messages still waiting are kept; files cannot be stored, so a message with files is lost with the page. */
  save() {
    const waiting = this.entries.filter((entry) => entry.files.length === 0 && entry.state !== "failed");
    if (waiting.length === 0) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(waiting.map(({ clientMsgId, conversationId, text, at }) => ({ clientMsgId, conversationId, text, at }))));
  }

  /** What an earlier page left unsent, queued again with the same clientMsgIds. */
  load() {
    let stored = [];
    try {
      stored = JSON.parse(this.storage.getItem(this.key) ?? "[]");
    } catch {
      // Unreadable: nothing to send.
    }
    for (const raw of Array.isArray(stored) ? stored : []) {
      if (typeof raw?.clientMsgId !== "string" || typeof raw.conversationId !== "string" || typeof raw.text !== "string") continue;
      if (this.entries.some((entry) => entry.clientMsgId === raw.clientMsgId)) continue;
      this.entries.push({ clientMsgId: raw.clientMsgId, conversationId: raw.conversationId, text: raw.text, files: [], attachmentIds: [], at: Number(raw.at) || Date.now(), state: "queued", waiting: false, error: null });
    }
    return this.entries;
  }
}
