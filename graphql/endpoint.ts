import { GraphQLError, NoSchemaIntrospectionCustomRule, type DocumentNode, type ExecutionArgs } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type Plugin, type YogaInitialContext } from "graphql-yoga";
import { WebSocketServer } from "ws";
import type { RequestHandler, UpgradeHandler } from "../gateway/listener.js";
import type { Logger } from "../gateway/logger.js";
import { bearerToken, connectionParamsToken, createContext, type GraphQLContext, type GraphQLServices } from "./context.js";
import { addGrpcCode, createErrorMapper } from "./errors.js";
import { costLimitPlugin, queryDepthRule } from "./limits.js";
import { buildChatSchema } from "./schema/index.js";
import type { GraphQLSettings } from "./settings.js";

export const GRAPHQL_PATH = "/graphql";

export interface GraphQLEndpointOptions {
  readonly services: GraphQLServices;
  readonly settings: GraphQLSettings;
  readonly logger: Logger;
  /** The largest request body (HTTP) or WebSocket message accepted, as for Connect. */
  readonly maxRequestBytes: number;
  /** Counts each error a client is given, by its gRPC code name and its `extensions.code`. */
  readonly countError?: (grpcCode: string, code: string) => void;
}

/** As an UpgradeHandler: graphql-ws over WebSocket at /graphql (404 elsewhere); its drain closes every socket with 1001. */
export interface GraphQLEndpoint extends UpgradeHandler {
  readonly path: string;
  /** Queries, mutations and GraphiQL over HTTP/1.1 and h2 (subscriptions too, as server-sent events). */
  readonly handle: RequestHandler;
  close(): Promise<void>;
}

/** How the WebSocket path tells the context factory who is calling (HTTP requests carry a header instead). */
interface SocketContext {
  readonly socketToken?: string;
  readonly viaSocket: true;
}

type Enveloped = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

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

/**
 * /graphql: graphql-yoga over HTTP, graphql-ws over WebSocket, one schema, one envelop pipeline (so
 * the parse/validation cache, the limits and the error mapping are the same on both).
 */
export function createGraphQLEndpoint(options: GraphQLEndpointOptions): GraphQLEndpoint {
  const { services, settings, logger } = options;
  const toClientError = createErrorMapper(logger, options.countError);
  const depthRule = queryDepthRule(settings.maxDepth);

  const validation: Plugin = {
    onValidate({ addValidationRule }) {
      addValidationRule(depthRule);
      if (!settings.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
      return ({ result }) => addGrpcCode(result);
    },
  };

  const yoga = createYoga<Partial<SocketContext>, GraphQLContext>({
    schema: buildChatSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: settings.graphiql ? { title: "chat GraphQL", subscriptionsProtocol: "WS" } : false,
    multipart: false,
    maxRequestBodySize: options.maxRequestBytes,
    // Parsed and validated documents are cached by text (bounded LRU, 1024 entries), yoga's default.
    parserAndValidationCache: true,
    logging: yogaLogger(logger),
    maskedErrors: { maskError: (error) => toClientError(error) },
    plugins: [validation, costLimitPlugin(settings.maxCost)],
    context: (initial: YogaInitialContext & Partial<SocketContext>) =>
      createContext(services, initial.viaSocket ? initial.socketToken : bearerToken(initial.request?.headers.get("authorization") ?? undefined)),
  });

  const sockets = new WebSocketServer({ noServer: true, maxPayload: options.maxRequestBytes });
  const graphqlWs = useServer(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const initial: SocketContext & { params: typeof payload } = {
          viaSocket: true,
          socketToken: connectionParamsToken(ctx.connectionParams),
          params: payload,
        };
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped(initial as never);
        let document: DocumentNode;
        try {
          document = parse(payload.query);
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
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies Enveloped,
        };
      },
    },
    sockets,
  );

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
      sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit("connection", ws, request));
    },
    closeConnections() {
      for (const client of sockets.clients) client.close(1001, "server draining");
    },
    close: async () => {
      await graphqlWs.dispose();
    },
  };
}
