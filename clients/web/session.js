// The logged-in device and every HTTP call to /graphql. Access tokens are short-lived: they are
// renewed ahead of expiry, and a call refused for its token is retried once after a refresh.

const STORAGE_KEY = "chat.session";
const SESSION_FIELDS = "accessToken accessTokenExpiresAt refreshToken deviceId user { id username displayName }";
/** Errors that a fresh access token can cure. */
const TOKEN_CODES = new Set(["TOKEN_EXPIRED", "TOKEN_INVALID", "TOKEN_MISSING"]);

export class GraphQLRequestError extends Error {
  constructor(errors) {
    super(errors.map((error) => error.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? "UNKNOWN";
  }
}

export const isTokenError = (code) => TOKEN_CODES.has(code);

function readStored() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    return stored && typeof stored.accessToken === "string" && typeof stored.refreshToken === "string" ? stored : null;
  } catch {
    return null;
  }
}

async function post(query, variables, token) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the server answered ${response.status} without a GraphQL result`);
  }
  if (body.errors?.length) throw new GraphQLRequestError(body.errors);
  return body.data;
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
    const data = await post(
      `mutation($u: String!, $p: String!, $d: String, $n: String) { signUp(username: $u, password: $p, displayName: $d, deviceName: $n) { ${SESSION_FIELDS} } }`,
      { u: username, p: password, d: displayName || null, n: deviceName() },
    );
    this.adopt(data.signUp, true);
  }

  async logIn(username, password) {
    const data = await post(`mutation($u: String!, $p: String!, $n: String) { logIn(username: $u, password: $p, deviceName: $n) { ${SESSION_FIELDS} } }`, {
      u: username,
      p: password,
      n: deviceName(),
    });
    this.adopt(data.logIn, true);
  }

  async logOut() {
    const token = this.accessToken;
    this.end("");
    // The server revokes the device's tokens; locally the session is gone whatever it answers.
    if (token) await post("mutation { logOut }", {}, token).catch(() => {});
  }

  /** Runs an authenticated operation, renewing the access token once if the server refuses it. */
  async request(query, variables = {}) {
    const token = this.accessToken;
    if (!token) throw new Error("not logged in");
    try {
      return await post(query, variables, token);
    } catch (error) {
      if (error instanceof GraphQLRequestError && error.code === "DEVICE_REVOKED") this.end("This device was logged out.");
      if (!(error instanceof GraphQLRequestError) || !isTokenError(error.code)) throw error;
      await this.refresh(token);
      return post(query, variables, this.accessToken);
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
        const data = await post(`mutation($r: String!) { refreshSession(refreshToken: $r) { ${SESSION_FIELDS} } }`, { r: used });
        this.adopt(data.refreshSession, true);
      } catch (error) {
        const stored = readStored();
        if (stored && stored.refreshToken !== used && stored.user.id === this.current?.user.id) {
          this.adopt(stored, false);
        } else if (error instanceof GraphQLRequestError) {
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
