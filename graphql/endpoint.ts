import { GraphQLError, NoSchemaIntrospectionCustomRule, type DocumentNode } from "graphql";
import { CloseCode, handleProtocols, makeServer, type WebSocket as GraphQLWsSocket } from "graphql-ws";
import { createYoga, type Plugin, type YogaInitialContext } from "graphql-yoga";
import type { IncomingMessage } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import type { RequestHandler, UpgradeHandler } from "../gateway/listener.js";
import type { Logger } from "../gateway/logger.js";
import { bearerToken, connectionParamsToken, createContext, type GraphQLContext, type GraphQLServices } from "./context.js";
import { addGrpcCode, createErrorMapper } from "./errors.js";
import { browserGuardPlugin, corsFor, createOriginPolicy, DEFAULT_DOCUMENT_LIMITS, documentGuardPlugin, withoutSuggestionsIn, type DocumentLimits } from "./guard.js";
import { clientAddressOf } from "../gateway/client-address.js";
import { costLimitPlugin, queryDepthRule } from "./limits.js";
import { sharedEventsPlugin } from "./shared-events.js";
import { buildChatSchema } from "./schema/index.js";
import type { GraphQLSettings } from "./settings.js";
import { createTrustedDocuments } from "./trusted-documents.js";

export const GRAPHQL_PATH = "/graphql";

export interface GraphQLEndpointOptions {
  readonly services: GraphQLServices;
  readonly settings: GraphQLSettings;
  readonly logger: Logger;
  /** The largest request body (HTTP) or WebSocket message accepted, as for Connect. */
  readonly maxRequestBytes: number;
  /** Counts each error a client is given, by its gRPC code name and its `extensions.code`. */
  readonly countError?: (grpcCode: string, code: string) => void;
  /** Browser origins allowed besides the gateway's own (see guard.ts). */
  readonly allowedOrigins?: readonly string[];
  /** Client addresses come from X-Forwarded-For (see gateway/client-address.ts). */
  readonly trustForwardedFor?: boolean;
  readonly documentLimits?: DocumentLimits;
}

/** As an UpgradeHandler: graphql-ws over WebSocket at /graphql (404 elsewhere); its drain closes every socket with 1001. */
export interface GraphQLEndpoint extends UpgradeHandler {
  readonly path: string;
  /** Queries, mutations and GraphiQL over HTTP/1.1 and h2 (subscriptions too, as server-sent events). */
  readonly handle: RequestHandler;
  close(): Promise<void>;
}

const KEEP_ALIVE_MS = 12_000;
/** The sockets are pinged in this many groups, one group per tick, so thousands are not pinged in one burst. */
const KEEP_ALIVE_GROUPS = 12;

/**
 * Pings every socket each KEEP_ALIVE_MS and ends one that has not answered the previous ping, as
 * graphql-ws's `useServer` does, but with one timer for all sockets rather than two per socket.
 */
function createKeepAlive() {
  const groups = Array.from({ length: KEEP_ALIVE_GROUPS }, () => new Set<WebSocket>());
  const unanswered = new WeakSet<WebSocket>();
  function onPong(this: WebSocket) {
    unanswered.delete(this);
  }
  let added = 0;
  let tick = 0;
  const timer = setInterval(() => {
    for (const socket of groups[tick++ % KEEP_ALIVE_GROUPS]!) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      if (unanswered.has(socket)) {
        socket.terminate();
        continue;
      }
      unanswered.add(socket);
      socket.ping();
    }
  }, KEEP_ALIVE_MS / KEEP_ALIVE_GROUPS);
  timer.unref();
  return {
    add(socket: WebSocket) {
      groups[added++ % KEEP_ALIVE_GROUPS]!.add(socket);
      socket.on("pong", onPong);
    },
    delete(socket: WebSocket) {
      for (const group of groups) group.delete(socket);
    },
    forEach(each: (socket: WebSocket) => void) {
      for (const group of groups) for (const socket of group) each(socket);
    },
    stop: () => clearInterval(timer),
  };
}

const GRAPHIQL_QUERY = `# Put the accessToken from signUp or logIn in Headers below, then run this.
# The Docs button lists every type and field.
{
  me { user { username } deviceId }
  inbox(first: 5) { nodes { conversation { conversationId title } unreadCount } }
}
`;

type GraphiQLOptions = Parameters<typeof import("@graphql-yoga/render-graphiql").renderGraphiQL>[0];

/**
 * GraphiQL with its scripts, styles and workers inlined from @graphql-yoga/render-graphiql, so the
 * page loads with no network beyond this gateway (yoga's own page fetches them from a public CDN).
 * The page is about 9 MB: its module is loaded on the first request only, and the page built once.
 */
function createGraphiQLRenderer(): (options: GraphiQLOptions) => Promise<string> {
  let page: Promise<string> | undefined;
  return (options) => (page ??= import("@graphql-yoga/render-graphiql").then((module) => module.renderGraphiQL(options)));
}

/** Yoga's log lines go to the gateway's logger; errors are already logged once by the error mapper. */
function yogaLogger(logger: Logger) {
  return {
    debug: (...args: unknown[]) => logger.debug({ yoga: args }, "graphql"),
    info: (...args: unknown[]) => logger.debug({ yoga: args }, "graphql"),
    warn: (...args: unknown[]) => logger.warn({ yoga: args }, "graphql"),
    error: (...args: unknown[]) => logger.debug({ yoga: args }, "graphql error (mapped)"),
  };
}

/** An error for a WebSocket client: the HTTP status hint yoga adds means nothing there. */
function withoutHttp(error: GraphQLError): GraphQLError {
  if (!("http" in error.extensions)) return error;
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions });
}

interface SocketExtra {
  readonly transport: SocketTransport;
  readonly clientAddress: string;
}

/**
 * graphql-ws's view of one socket. A class, not an object of closures: one is kept per connection,
 * and under tsx every named closure also carries a property table (esbuild's keepNames).
 */
class SocketTransport implements GraphQLWsSocket {
  constructor(
    private readonly socket: WebSocket,
    private readonly logger: Logger,
  ) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  /** Never rejects: a write that fails means the connection is going, and its close event ends the subscriptions. */
  send(data: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState !== WebSocket.OPEN) return resolve();
      this.socket.send(data, () => resolve());
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handle: (data: string) => Promise<void>): void {
    this.socket.on("message", (data) => {
      handle(String(data)).catch((error: unknown) => {
        this.logger.error({ err: error, path: GRAPHQL_PATH }, "graphql websocket message failed");
        this.socket.close(CloseCode.InternalServerError, "Internal server error");
      });
    });
  }
}

/**
 * /graphql: graphql-yoga over HTTP, graphql-ws over WebSocket, one schema, one envelop pipeline (so
 * the parse/validation cache, the limits and the error mapping are the same on both).
 */
export function createGraphQLEndpoint(options: GraphQLEndpointOptions): GraphQLEndpoint {
  const { services, settings, logger } = options;
  const toClientError = createErrorMapper(logger, options.countError);
  const depthRule = queryDepthRule(settings.maxDepth);
  const trusted = createTrustedDocuments(settings.trustedDocuments, settings.trustedDocumentsFile, logger);
  const origins = createOriginPolicy(options.allowedOrigins ?? []);
  const trustForwardedFor = options.trustForwardedFor ?? false;

  const validation: Plugin = {
    onValidate({ addValidationRule }) {
      addValidationRule(depthRule);
      if (!settings.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
      return ({ result }) => addGrpcCode(result);
    },
  };

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildChatSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: settings.graphiql
      ? {
          title: "chat GraphQL",
          subscriptionsProtocol: "WS",
          // Sent as headers over HTTP and as connection parameters over WebSocket: both read `Authorization`.
          headers: JSON.stringify({ Authorization: "Bearer <accessToken from signUp or logIn>" }, null, 2),
          defaultQuery: GRAPHIQL_QUERY,
        }
      : false,
    renderGraphiQL: createGraphiQLRenderer(),
    multipart: false,
    maxRequestBodySize: options.maxRequestBytes,
    // Parsed and validated documents are cached by text (bounded LRU, 1024 entries), yoga's default.
    parserAndValidationCache: true,
    logging: yogaLogger(logger),
    maskedErrors: { maskError: (error) => (settings.introspection ? toClientError(error) : withoutSuggestionsIn(toClientError(error))) },
    cors: corsFor(origins),
    plugins: [
      browserGuardPlugin(origins),
      // Before the document guard: a persisted document is checked like one sent in full.
      ...trusted.plugins(),
      documentGuardPlugin(options.documentLimits ?? DEFAULT_DOCUMENT_LIMITS, { hideSuggestions: !settings.introspection }),
      validation,
      costLimitPlugin(settings.maxCost),
      sharedEventsPlugin,
    ],
    context: (initial: YogaInitialContext & { req?: IncomingMessage }) =>
      createContext(
        services,
        bearerToken(initial.request.headers.get("authorization") ?? undefined),
        initial.req ? clientAddressOf(initial.req, trustForwardedFor) : "",
      ),
  });

  // One enveloped pipeline for every WebSocket operation: with a static schema and no hook reading the
  // initial context, nothing in it differs per operation.
  const { schema, execute, subscribe, parse, validate } = yoga.getEnveloped({});
  const protocol = makeServer<Record<string, unknown> | undefined, SocketExtra>({
    // A socket is for one signed-in device: a missing token closes it with 4401, a bad one with 4403
    // (before any operation), so a client learns at once that it must log in or refresh.
    onConnect: async (ctx) => {
      const token = connectionParamsToken(ctx.connectionParams);
      if (!token) {
        ctx.extra.transport.close(CloseCode.Unauthorized, "Unauthorized: send connectionParams.authorization");
        return false;
      }
      try {
        await services.accounts.authenticate(token);
        return true;
      } catch {
        return false;
      }
    },
    execute: (args) => execute(args) as never,
    subscribe: (args) => subscribe(args) as never,
    // The HTTP status hint on an error (429 for a rate limit) means nothing on a socket.
    onNext: (_ctx, _id, _payload, _args, result) =>
      result.errors?.some((error) => error.extensions && "http" in error.extensions)
        ? { ...result, errors: result.errors.map((error) => withoutHttp(error as GraphQLError)) }
        : undefined,
    onSubscribe: (ctx, _id, payload) => {
      const query = trusted.mode === "off" ? payload.query : trusted.resolve(payload);
      if (typeof query !== "string") return [withoutHttp(toClientError(query))];
      let document: DocumentNode;
      try {
        // Both cached by the document text (yoga's bounded LRU), so a repeated subscription costs two look-ups.
        document = parse(query);
      } catch (error) {
        return [withoutHttp(toClientError(error))];
      }
      const errors = validate(schema, document);
      if (errors.length > 0) return errors.map(withoutHttp);
      return {
        schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue: createContext(services, connectionParamsToken(ctx.connectionParams), ctx.extra.clientAddress),
      };
    },
  });

  // No per-message compression (it keeps a zlib context per socket) and no client set: `keepAlive` tracks the sockets.
  const sockets = new WebSocketServer({ noServer: true, maxPayload: options.maxRequestBytes, perMessageDeflate: false, clientTracking: false, handleProtocols });
  const keepAlive = createKeepAlive();
  const onSocketError = (error: Error) => logger.debug({ err: error, path: GRAPHQL_PATH }, "graphql websocket error");
  sockets.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    keepAlive.add(socket);
    socket.on("error", onSocketError);
    // The upgrade request itself (headers and all) is not kept for the life of the connection.
    const transport = new SocketTransport(socket, logger);
    const closed = protocol.opened(transport, { transport, clientAddress: clientAddressOf(request, trustForwardedFor) });
    socket.once("close", (code, reason) => {
      keepAlive.delete(socket);
      void closed(code, String(reason));
    });
  });

  return {
    path: GRAPHQL_PATH,
    handle(request, response) {
      // The adapter called as a Node listener writes the response (handleNodeRequestAndResponse only returns it).
      Promise.resolve(yoga(request, response)).catch((error: unknown) => {
        logger.debug({ err: error, path: GRAPHQL_PATH }, "graphql response ended early");
      });
    },
    upgrade(request, socket, head) {
      if ((request.url ?? "").split("?", 1)[0] !== GRAPHQL_PATH) {
        socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        return;
      }
      // Browsers send Origin on every WebSocket upgrade and apply no CORS to it: the check is ours.
      if (origins.credentialsFor(request.headers.origin, request.headers.host) === undefined) {
        socket.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        return;
      }
      sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit("connection", ws, request));
    },
    closeConnections() {
      keepAlive.forEach((socket) => socket.close(1001, "server draining"));
    },
    close: async () => {
      keepAlive.stop();
      keepAlive.forEach((socket) => socket.close(1001, "Going away"));
      await new Promise<void>((resolve, reject) => sockets.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
