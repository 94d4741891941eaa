import { WebSocket } from "ws";

export interface Operation {
  readonly query: string;
  readonly variables?: Readonly<Record<string, unknown>>;
}

const FEED_ID = "feed";

/**
 * One graphql-ws connection (the graphql-transport-ws protocol) written straight on `ws`: one
 * subscription, and mutations on the same socket, as a device holds them. The load generator runs
 * 500 of these; the protocol is a handful of JSON frames, so this costs little beyond the JSON.
 * `ready` resolves on the subscription's first event (the gateway's READY, the relay's "live").
 */
export class LeanGraphQL {
  readonly ready: Promise<void>;
  private readonly socket: WebSocket;
  private nextId = 0;

  /**
   * `onEvent` gets each event's `data`, the first included; `onRejected` each mutation answered with
   * errors or user errors. An error or complete on the subscription before its first event fails `ready`.
   */
  constructor(url: string, connectionParams: Record<string, unknown>, feed: Operation, onEvent: (data: Record<string, unknown>) => void, onRejected: () => void) {
    this.socket = new WebSocket(url, "graphql-transport-ws", { perMessageDeflate: false });
    let onReady!: () => void;
    let onFail!: (error: Error) => void;
    let live = false;
    this.ready = new Promise((resolve, reject) => ((onReady = resolve), (onFail = reject)));
    this.ready.catch(() => undefined);
    this.socket.on("open", () => this.socket.send(JSON.stringify({ type: "connection_init", payload: connectionParams })));
    this.socket.on("error", (error) => onFail(error));
    this.socket.on("close", (code, reason) => onFail(new Error(`graphql-ws closed before the subscription was live (${code} ${String(reason)})`)));
    this.socket.on("message", (raw) => {
      const message = JSON.parse(String(raw)) as { type: string; id?: string; payload?: { data?: Record<string, unknown>; errors?: unknown[] } };
      switch (message.type) {
        case "connection_ack":
          return this.socket.send(JSON.stringify({ id: FEED_ID, type: "subscribe", payload: feed }));
        case "ping":
          return this.socket.send('{"type":"pong"}');
        case "next":
          if (message.id !== FEED_ID) {
            // Refused: a top-level error (a rate limit) or a payload's user errors (bad input).
            const payloads = Object.values(message.payload?.data ?? {}) as ({ userErrors?: unknown[] } | null)[];
            if (message.payload?.errors?.length || payloads.some((payload) => payload?.userErrors?.length)) onRejected();
            return;
          }
          if (!live) {
            live = true;
            onReady();
          }
          if (message.payload?.data) onEvent(message.payload.data);
          return;
        case "error":
          if (message.id === FEED_ID) onFail(new Error(`the subscription failed: ${JSON.stringify(message.payload)}`));
          else onRejected();
          return;
        case "complete":
          if (message.id === FEED_ID) onFail(new Error("the subscription completed before its first event"));
          return;
      }
    });
  }

  mutate(operation: Operation): void {
    this.socket.send(JSON.stringify({ id: String(++this.nextId), type: "subscribe", payload: operation }));
  }

  close(): void {
    this.socket.terminate();
  }
}
