// Subscriptions over one WebSocket, speaking graphql-ws ("graphql-transport-ws") by hand.
// The connection comes back by itself: every active subscription is sent again, each asking the
// server for its variables anew (the message feed's variables hold its resume cursors).

import { isTokenError } from "./api.js";

/** Feed endings the server asks us to answer by subscribing again. */
const RETRYABLE = new Set(["SERVER_DRAINING", "SLOW_CONSUMER", "UNAVAILABLE", "INTERNAL", "RATE_LIMITED"]);
const KEEPALIVE_MS = 20_000;
const PONG_TIMEOUT_MS = 10_000;
const ACK_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

export class LiveConnection {
  /**
   * @param {import("./session.js").Session} session
   * @param {(state: "connecting" | "online" | "offline") => void} onState
   */
  constructor(session, onState) {
    this.session = session;
    this.onState = onState;
    this.url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
    this.subscriptions = new Set();
    this.byId = new Map();
    this.nextId = 0;
    this.socket = null;
    this.ready = false;
    this.socketToken = null;
    this.attempts = 0;
    this.retryTimer = 0;
    this.keepaliveTimer = 0;
    this.deadlineTimer = 0;
    this.closed = false;
    this.renewing = false;
    this.onOnline = () => {
      if (this.subscriptions.size > 0) this.connect();
    };
    addEventListener("online", this.onOnline);
  }

  /**
   * @param {string} query
   * @param {() => object} variables read each time the subscription is (re)started
   * @param {{ next: (data: any) => void, error?: (errors: any[]) => void }} handlers
   * @returns {() => void} ends the subscription
   */
  subscribe(query, variables, handlers) {
    const subscription = { query, variables, handlers, id: null, errors: null, retry: 0, attempts: 0 };
    this.subscriptions.add(subscription);
    if (this.ready) this.start(subscription);
    else if (!this.retryTimer) this.connect();
    return () => {
      this.subscriptions.delete(subscription);
      clearTimeout(subscription.retry);
      if (subscription.id === null) return;
      this.byId.delete(subscription.id);
      if (this.ready) this.send({ id: subscription.id, type: "complete" });
    };
  }

  close() {
    this.closed = true;
    removeEventListener("online", this.onOnline);
    for (const subscription of this.subscriptions) clearTimeout(subscription.retry);
    this.subscriptions.clear();
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.drop();
    socket?.close(1000, "logged out");
  }

  connect() {
    // One socket at a time; while a token is being renewed the renewal connects when it is done.
    if (this.closed || this.socket || this.renewing) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.onState("connecting");
    const socket = new WebSocket(this.url, "graphql-transport-ws");
    this.socket = socket;
    this.socketToken = this.session.accessToken;
    socket.onopen = () => this.send({ type: "connection_init", payload: { authorization: `Bearer ${this.socketToken}` } });
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.drop();
      // 4403 (graphql-ws's Forbidden): a server that checks the token at connection_init refused it.
      if (event.code === 4403) this.renew(this.socketToken);
      else this.reconnectLater();
    };
    this.deadline(ACK_TIMEOUT_MS);
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    switch (message.type) {
      case "connection_ack":
        this.ready = true;
        this.attempts = 0;
        clearTimeout(this.deadlineTimer);
        this.onState("online");
        this.keepalive();
        for (const subscription of this.subscriptions) if (subscription.id === null) this.start(subscription);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "pong":
        clearTimeout(this.deadlineTimer);
        break;
      case "next": {
        const subscription = this.byId.get(message.id);
        if (!subscription) break;
        // A feed that fails sends one result with errors, then complete: act on the complete.
        if (message.payload?.errors?.length) subscription.errors = message.payload.errors;
        else {
          subscription.attempts = 0;
          subscription.handlers.next(message.payload?.data);
        }
        break;
      }
      case "error":
        this.ended(message.id, message.payload);
        break;
      case "complete":
        this.ended(message.id, null);
        break;
    }
  }

  start(subscription) {
    subscription.id = String(++this.nextId);
    subscription.errors = null;
    this.byId.set(subscription.id, subscription);
    this.send({ id: subscription.id, type: "subscribe", payload: { query: subscription.query, variables: subscription.variables() } });
  }

  /** The server ended a subscription we still want: start it again, unless it can never work. */
  ended(id, errors) {
    const subscription = this.byId.get(id);
    if (!subscription) return;
    this.byId.delete(id);
    subscription.id = null;
    const failure = errors ?? subscription.errors;
    const code = failure?.[0]?.extensions?.code;
    if (code && isTokenError(code)) {
      this.renew(this.socketToken);
      return;
    }
    if (failure && !RETRYABLE.has(code)) {
      this.subscriptions.delete(subscription);
      subscription.handlers.error?.(failure);
      return;
    }
    subscription.retry = setTimeout(() => {
      if (this.ready && this.subscriptions.has(subscription) && subscription.id === null) this.start(subscription);
    }, backoff(subscription.attempts++));
  }

  /** The socket's token is refused: get a fresh one, then reconnect with it (connection parameters are per socket). */
  renew(staleToken) {
    const socket = this.socket;
    this.drop();
    socket?.close(1000, "new token");
    this.renewing = true;
    this.session.refresh(staleToken).then(
      () => {
        this.renewing = false;
        this.connect();
      },
      () => {
        this.renewing = false;
        // The session ended (the app logs out) or the server is unreachable (try again later).
        if (this.session.accessToken) this.reconnectLater();
      },
    );
  }

  reconnectLater() {
    if (this.closed || this.subscriptions.size === 0) return;
    this.onState("offline");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), backoff(this.attempts++));
  }

  /** Forgets the current socket: its subscriptions start again on the next one. */
  drop() {
    const socket = this.socket;
    if (socket) socket.onopen = socket.onmessage = socket.onclose = null;
    this.socket = null;
    this.ready = false;
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.deadlineTimer);
    this.byId.clear();
    for (const subscription of this.subscriptions) {
      subscription.id = null;
      clearTimeout(subscription.retry);
    }
  }

  /** A connection can die without a close event (a laptop waking up): a ping that gets no pong ends it. */
  keepalive() {
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = setInterval(() => {
      this.send({ type: "ping" });
      this.deadline(PONG_TIMEOUT_MS);
    }, KEEPALIVE_MS);
  }

  deadline(ms) {
    clearTimeout(this.deadlineTimer);
    const socket = this.socket;
    this.deadlineTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      this.drop();
      socket?.close();
      this.reconnectLater();
    }, ms);
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

/** Exponential, capped, with jitter so that many clients of a restarted gateway do not return at once. */
function backoff(attempt) {
  const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
