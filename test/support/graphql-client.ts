import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface GraphQLErrorShape {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions?: { readonly code?: string; readonly grpcCode?: string; readonly field?: string; readonly metadata?: Record<string, string> } & Record<string, unknown>;
}

export interface GraphQLResult<T> {
  readonly data?: T | null;
  readonly errors?: readonly GraphQLErrorShape[];
}

/** POST /graphql as JSON, with `Authorization: Bearer <token>` when given. */
export async function graphqlHttp<T = Record<string, any>>(baseUrl: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<GraphQLResult<T> & { status: number }> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as GraphQLResult<T>) };
}

/** `data` of a successful operation; fails the test with the errors otherwise. */
export async function graphqlData<T = Record<string, any>>(baseUrl: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const result = await graphqlHttp<T>(baseUrl, query, variables, token);
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/** A graphql-ws client of /graphql; the token goes in the `authorization` connection parameter. */
export function graphqlWsClient(baseUrl: string, token?: string, options: { connectionParams?: Record<string, unknown>; lazy?: boolean } = {}): Client {
  return createClient({
    url: `${baseUrl.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: options.connectionParams ?? (token ? { authorization: `Bearer ${token}` } : {}),
    retryAttempts: 0,
    // Lazy (the default here): connects on the first subscription, closes (1000) after the last.
    lazy: options.lazy ?? true,
    // A non-lazy client reports its connection closing here; tests watch the `closed` event instead.
    onNonLazyError: () => {},
  });
}

type Event<T> = { readonly kind: "next"; readonly result: GraphQLResult<T> } | { readonly kind: "error"; readonly error: unknown } | { readonly kind: "complete" };

/** One subscription as a queue the test pulls from. */
export class LiveSubscription<T> {
  private readonly events: Event<T>[] = [];
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  /** `extra`: more payload fields, e.g. a `documentId` (with `query: ""`) for a persisted document. */
  constructor(client: Client, query: string, variables: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
    const push = (event: Event<T>) => {
      this.events.push(event);
      this.wake?.();
    };
    this.unsubscribe = client.subscribe<T>(
      { query, variables, ...extra },
      {
        next: (result) => push({ kind: "next", result: result as GraphQLResult<T> }),
        error: (error) => push({ kind: "error", error }),
        complete: () => push({ kind: "complete" }),
      },
    );
  }

  /** The next event, waiting up to `timeoutMs`. */
  async nextEvent(timeoutMs = 10_000): Promise<Event<T>> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no subscription event within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.events.shift()!;
  }

  /** The next `data`; fails on errors, an error message or completion. */
  async next(timeoutMs?: number): Promise<T> {
    const event = await this.nextEvent(timeoutMs);
    if (event.kind === "next" && event.result.data && !event.result.errors) return event.result.data;
    throw new Error(`expected data, got ${JSON.stringify(event, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`);
  }

  /** Whether nothing arrives within `ms`. */
  async quietFor(ms: number): Promise<boolean> {
    try {
      const event = await this.nextEvent(ms);
      this.events.unshift(event);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    this.unsubscribe();
  }
}
