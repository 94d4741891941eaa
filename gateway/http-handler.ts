import { createConnectRouter, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { clientAddressOf, kClientAddress } from "./client-address.js";
import type { RequestHandler } from "./listener.js";
import type { Logger } from "./logger.js";
import { retypeMalformedRequest } from "./malformed-requests.js";
import { kResetStream, streamResetter } from "./stream-reset.js";
import { writeHead } from "./write-head.js";

export interface HttpHandlerOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly maxRequestBytes: number;
  readonly logger: Logger;
  /** Whether the gateway takes new work (not starting, not draining). */
  readonly isReady: () => boolean;
  /** Client addresses come from X-Forwarded-For (see client-address.ts). */
  readonly trustForwardedFor?: boolean;
  /** GraphQL over HTTP at `path` (its WebSocket side is the listener's upgrade handler). */
  readonly graphql?: { readonly path: string; readonly handle: RequestHandler };
  /** Prometheus text format on `/metrics`. */
  readonly metrics?: { readonly handle: RequestHandler };
  /** The web client's files, `/` among them. */
  readonly webClient?: { readonly paths: ReadonlySet<string>; readonly handle: RequestHandler };
  /** PUT and GET of the local blob store's signed URLs, under `pathPrefix`. */
  readonly blobs?: { readonly pathPrefix: string; readonly handle: RequestHandler };
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/**
 * Connect, gRPC and gRPC-web for every registered service, plus the plain HTTP probes. Written out
 * (instead of connectNodeAdapter) so the probes and, later, hand-written hot paths sit beside the
 * router in one table.
 */
export function createHttpHandler(options: HttpHandlerOptions): RequestHandler {
  const router = createConnectRouter({
    readMaxBytes: options.maxRequestBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  options.routes(router);
  const routes = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));

  const probe = (response: AnyResponse, ok: boolean, body: string) => {
    writeHead(response, ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    response.end(body);
  };

  return (request: AnyRequest, response: AnyResponse) => {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    const handler = routes.get(path);
    if (handler) {
      const contextValues = createContextValues()
        .set(kResetStream, streamResetter(request, response))
        .set(kClientAddress, clientAddressOf(request, options.trustForwardedFor ?? false));
      const universal = universalRequestFromNodeRequest(request, response, undefined, contextValues);
      handler(universal)
        // Streams too: their gRPC trailers get the spec's grpc-message encoding there.
        .then((result) => retypeMalformedRequest(result))
        .then((result) => universalResponseToNodeResponse(result, response))
        .catch((error: unknown) => {
          // A client that goes away mid-response is normal; anything else is worth a line.
          if ((error as { code?: string }).code !== "ERR_STREAM_PREMATURE_CLOSE") {
            options.logger.debug({ err: error, path }, "response ended early");
          }
        });
      return;
    }
    if (options.graphql && path === options.graphql.path) return options.graphql.handle(request, response);
    if (options.metrics && path === "/metrics") return options.metrics.handle(request, response);
    if (options.webClient?.paths.has(path)) return options.webClient.handle(request, response);
    if (options.blobs && path.startsWith(options.blobs.pathPrefix)) return options.blobs.handle(request, response);
    if (path === "/healthz") return probe(response, true, "ok\n");
    if (path === "/readyz") return options.isReady() ? probe(response, true, "ready\n") : probe(response, false, "not ready\n");
    writeHead(response, 404, { "content-type": "text/plain; charset=utf-8" });
    response.end(`not found: this gateway serves chat.v1 over Connect, gRPC and gRPC-web${options.graphql ? `, GraphQL at ${options.graphql.path}` : ""}${options.metrics ? ", /metrics" : ""}, /healthz and /readyz\n`);
  };
}
