import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import type { ChatClient } from "../../clients/sdk/index.js";

/** A stub of a generated service the SDK has no field for, calling as the client's logged-in device. */
export function serviceClient<S extends DescService>(service: S, client: ChatClient): Client<S> {
  const auth: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${client.session.accessToken}`);
    return next(request);
  };
  return createClient(service, createConnectTransport({ baseUrl: client.options.baseUrl, httpVersion: "1.1", interceptors: [auth] }));
}

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The status the receiver answered. */
  readonly status: number;
}

/**
 * An HTTP server on loopback standing in for a webhook receiver or a push service. `answer` picks the
 * status of each request (default 200); every request is recorded with the status it got.
 */
export interface Receiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  answer: (request: { path: string; headers: IncomingHttpHeaders; body: Buffer; previous: readonly ReceivedRequest[] }) => number;
  /** Resolves with the first request (in arrival order) matching, waiting up to `timeoutMs`. */
  waitFor(match: (request: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let server: Server;
  const receiver: Receiver = {
    url: "",
    requests,
    answer: () => 200,
    async waitFor(match, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = requests.find(match);
        if (found) return found;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching request within ${timeoutMs} ms; got ${requests.map((r) => `${r.path} ${r.status}`).join(", ") || "none"}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, left);
          function done() {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          }
          waiters.add(done);
        });
      }
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = request.url ?? "";
      const status = receiver.answer({ path, headers: request.headers, body, previous: requests.filter((r) => r.path === path) });
      requests.push({ path, headers: request.headers, body, status });
      response.writeHead(status).end();
      for (const wake of [...waiters]) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (receiver as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** Checks `x-chat-signature: t=<seconds>,v1=<hex>` as a receiver would: HMAC-SHA256 over "<t>.<raw body>". */
export function verifyWebhookSignature(secret: string, header: string | string[] | undefined, body: Buffer): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header ?? ""));
  if (!match) return false;
  const expected = createHmac("sha256", secret).update(`${match[1]}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, "hex"));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
