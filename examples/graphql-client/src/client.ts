import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TypedDocumentString } from "../gql/graphql.js";

/**
 * A typed GraphQL client in a few lines: documents from `graphql()` (gql/) carry their result and
 * variable types, so `request` and `subscribe` are checked against the schema at compile time.
 * With `persisted`, only each document's id (its SHA-256, from codegen) is sent: what a server
 * with CHAT_GRAPHQL_TRUSTED_DOCUMENTS=only accepts.
 */
export class ChatGraphQL {
  private socket: Client | undefined;
  token: string | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly persisted = false,
  ) {}

  private body<R, V>(document: TypedDocumentString<R, V>, variables: V): Record<string, unknown> {
    const hash = document.__meta__?.hash;
    if (this.persisted && typeof hash === "string") return { documentId: hash, variables };
    return { query: document.toString(), variables };
  }

  /** A query or mutation over HTTP. Throws on top-level errors; user errors are the caller's to read. */
  async request<R, V>(document: TypedDocumentString<R, V>, variables: V): Promise<R> {
    const response = await fetch(`${this.baseUrl}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json",
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      body: JSON.stringify(this.body(document, variables)),
    });
    const result = (await response.json()) as { data?: R; errors?: { message: string; extensions?: { code?: string } }[] };
    if (result.errors?.length || !result.data) {
      const first = result.errors?.[0];
      throw new Error(`${first?.extensions?.code ?? response.status}: ${first?.message ?? "no data"}`);
    }
    return result.data;
  }

  /** A subscription over graphql-ws, as an async iterator of its events' data. */
  subscribe<R, V>(document: TypedDocumentString<R, V>, variables: V): AsyncIterableIterator<R> {
    this.socket ??= createClient({
      url: `${this.baseUrl.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: () => ({ authorization: `Bearer ${this.token}` }),
      retryAttempts: 0,
    });
    const payload = this.body(document, variables);
    const events = this.socket.iterate<R>({ query: "", ...payload } as { query: string });
    return (async function* () {
      for await (const event of events) {
        if (event.errors?.length || !event.data) throw new Error(`subscription failed: ${JSON.stringify(event.errors)}`);
        yield event.data;
      }
    })();
  }

  async close(): Promise<void> {
    await this.socket?.dispose();
  }
}
