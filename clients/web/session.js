// The logged-in device and its tokens; every authenticated call runs through `call`. Access tokens
// are short-lived: they are renewed ahead of expiry, and a call refused for its token is retried
// once after a refresh.

import * as api from "./api.js";

const STORAGE_KEY = "chat.session";

function readStored() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    return stored && typeof stored.accessToken === "string" && typeof stored.refreshToken === "string" ? stored : null;
  } catch {
    return null;
  }
}

export class Session {
  /** @param {(reason: string) => void} onEnded called when the session is gone (logged out, revoked, expired) */
  constructor(onEnded) {
    this.onEnded = onEnded;
    this.current = readStored();
    this.refreshing = null;
    this.timer = 0;
    // Tabs of one browser share the session: a refresh token works once, so adopt what another tab got.
    addEventListener("storage", (event) => {
      if (event.key !== STORAGE_KEY || !this.current) return;
      const stored = readStored();
      if (stored && stored.user.id === this.current.user.id) this.adopt(stored, false);
      else this.end("", false);
    });
    if (this.current) this.schedule();
  }

  get user() {
    return this.current?.user ?? null;
  }

  get accessToken() {
    return this.current?.accessToken ?? null;
  }

  async signUp(username, password, displayName) {
    this.adopt(await api.signUp(username, password, displayName, deviceName()), true);
  }

  async logIn(username, password) {
    this.adopt(await api.logIn(username, password, deviceName()), true);
  }

  async logOut() {
    const token = this.accessToken;
    this.end("");
    // The server revokes the device's tokens; locally the session is gone whatever it answers.
    if (token) await api.logOut(token).catch(() => {});
  }

  /**
   * Runs an authenticated call, `fn(accessToken)`, renewing the access token once if the server refuses it.
   * @template T
   * @param {(token: string) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async call(fn) {
    const token = this.accessToken;
    if (!token) throw new Error("not logged in");
    try {
      return await fn(token);
    } catch (error) {
      if (error instanceof api.ApiError && error.code === "DEVICE_REVOKED") this.end("This device was logged out.");
      if (!(error instanceof api.ApiError) || !api.isTokenError(error.code)) throw error;
      await this.refresh(token);
      return fn(this.accessToken);
    }
  }

  /**
   * Trades the refresh token for new tokens, once however many callers found `staleToken` refused.
   * Ends the session when the refresh token is no longer accepted.
   */
  refresh(staleToken = this.accessToken) {
    if (this.current && this.current.accessToken !== staleToken) return Promise.resolve();
    this.refreshing ??= (async () => {
      const used = this.current?.refreshToken;
      if (!used) throw new Error("not logged in");
      try {
        this.adopt(await api.refreshSession(used), true);
      } catch (error) {
        const stored = readStored();
        if (stored && stored.refreshToken !== used && stored.user.id === this.current?.user.id) {
          this.adopt(stored, false);
        } else if (error instanceof api.ApiError) {
          this.end("Your session has expired. Please log in again.");
          throw error;
        } else {
          throw error;
        }
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  adopt(session, store) {
    this.current = session;
    if (store) localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    this.schedule();
  }

  /** @param {boolean} forget false when another tab already changed what is stored */
  end(reason, forget = true) {
    clearTimeout(this.timer);
    this.current = null;
    if (forget) localStorage.removeItem(STORAGE_KEY);
    this.onEnded(reason);
  }

  /** Renews the access token a little before it expires, so live calls rarely meet a refusal. */
  schedule() {
    clearTimeout(this.timer);
    const expiresAt = Date.parse(this.current?.accessTokenExpiresAt ?? "");
    if (!Number.isFinite(expiresAt)) return;
    const left = expiresAt - Date.now();
    const delay = Math.max(1000, left - Math.min(60_000, left / 5));
    this.timer = setTimeout(() => {
      // Offline for now: try again later (a refused call also refreshes on its own).
      this.refresh().catch(() => (this.timer = setTimeout(() => this.schedule(), 10_000)));
    }, delay);
  }
}

function deviceName() {
  const agent = navigator.userAgent;
  const browser = /Firefox\//.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrom(e|ium)\//.test(agent) ? "Chromium" : /Safari\//.test(agent) ? "Safari" : "browser";
  return `Web (${browser})`;
}
