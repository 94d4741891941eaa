import { GraphQLError } from "graphql";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { ChatError, type ErrorCode } from "../services/errors.js";
import type { Logger } from "../gateway/logger.js";

/**
 * What a GraphQL client reads in `errors[].extensions`:
 *
 * - `code`: machine-readable. For a service error it is the `chat.v1.ErrorReason` name without its
 *   prefix (`NOT_A_MEMBER`, `TEXT_TOO_LONG`, `TOKEN_MISSING`, ...), exactly the reason a Connect
 *   client gets in its ErrorDetail. GraphQL-level failures use `GRAPHQL_PARSE_FAILED`,
 *   `GRAPHQL_VALIDATION_FAILED`, `QUERY_TOO_DEEP`, `QUERY_TOO_COSTLY`, `BAD_USER_INPUT` (a variable of
 *   the wrong type), `BAD_REQUEST` (not a GraphQL request), and the document limits of guard.ts
 *   (`DOCUMENT_TOO_LARGE`, `TOO_MANY_ALIASES`, ...); anything unexpected is `INTERNAL`.
 * - `grpcCode`: the Connect/gRPC status a Connect client would get (`permission_denied`, ...);
 *   `invalid_argument` for GraphQL-level failures, `internal` for unexpected ones.
 * - `field` (the input at fault, camelCased: `clientMsgId`, `conversationId`) and `metadata` (e.g.
 *   `{ max: "100000" }`, keys camelCased), when the service gave them. Messages name fields and
 *   operations as GraphQL does (`conversationId`, `refreshSession`), not as the proto does.
 */
export interface ChatErrorExtensions {
  readonly code: string;
  readonly grpcCode: ErrorCode;
  readonly field?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export const GRAPHQL_CODES = {
  parseFailed: "GRAPHQL_PARSE_FAILED",
  validationFailed: "GRAPHQL_VALIDATION_FAILED",
  tooDeep: "QUERY_TOO_DEEP",
  tooCostly: "QUERY_TOO_COSTLY",
  badUserInput: "BAD_USER_INPUT",
  internal: "INTERNAL",
} as const;

export const reasonName = (reason: ErrorReason): string => ErrorReason[reason] ?? "UNSPECIFIED";

const camelCase = (field: string) => field.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());

function chatExtensions(error: ChatError): ChatErrorExtensions {
  const metadata = Object.entries(error.metadata);
  return {
    code: reasonName(error.reason),
    grpcCode: error.code,
    ...(error.field ? { field: camelCase(error.field) } : {}),
    ...(metadata.length > 0 ? { metadata: Object.fromEntries(metadata.map(([key, value]) => [camelCase(key), value])) } : {}),
  };
}

/**
 * What yoga turns into the HTTP status and headers (and leaves out of the body): a rate-limited
 * request is answered 429, a refusal to take more work now (a full password-hashing queue) 503, both
 * with `Retry-After` in whole seconds, so HTTP clients and proxies back off without reading the body.
 * The WebSocket path drops it (graphql/endpoint.ts).
 */
function httpHint(error: ChatError): { http?: { status: number; headers: Record<string, string> } } {
  const rateLimited = error.reason === ErrorReason.RATE_LIMITED;
  if (!rateLimited && !(error.code === "unavailable" && error.metadata.retry_after_ms)) return {};
  const retryAfterMs = Number(error.metadata.retry_after_ms ?? 1000);
  const status = rateLimited ? 429 : 503;
  return { http: { status, headers: { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } } };
}

/** RPC names a service error may mention, as a GraphQL client knows them. */
const GRAPHQL_NAMES: readonly (readonly [RegExp, string])[] = [[/\bAccountsService\.Refresh\b/g, "the refreshSession mutation"]];

/** A service message in GraphQL's words: camelCase field names, mutations for RPCs. */
function graphqlMessage(message: string): string {
  let out = message.replace(/\b[a-z]+(?:_[a-z]+)+\b/g, camelCase);
  for (const [rpc, graphql] of GRAPHQL_NAMES) out = out.replace(rpc, graphql);
  return out;
}

/** The innermost cause: graphql-js wraps what a resolver threw, sometimes twice. */
function rootCause(error: unknown): unknown {
  let current = error;
  while (current instanceof GraphQLError && current.originalError) current = current.originalError;
  return current;
}

/**
 * The one place where errors become what a GraphQL client sees (yoga's `maskError`, and the
 * WebSocket path's parse failures). Service errors keep their reason; GraphQL's own errors keep their
 * message and get a code; anything else is logged and reported as a bare internal error, so driver
 * messages never reach a client.
 */
export function createErrorMapper(logger: Logger, countError?: (grpcCode: string, code: string) => void) {
  return function toClientError(error: unknown): GraphQLError {
    const mapped = map(error);
    const { code, grpcCode } = mapped.extensions;
    countError?.(String(grpcCode), String(code));
    return mapped;
  };

  function map(error: unknown): GraphQLError {
    const cause = rootCause(error);
    const located = error instanceof GraphQLError ? { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path } : {};
    if (cause instanceof ChatError) {
      return new GraphQLError(graphqlMessage(cause.message), { ...located, extensions: { ...chatExtensions(cause), ...httpHint(cause) } });
    }
    if (cause instanceof GraphQLError) {
      const { code, grpcCode } = cause.extensions;
      if (typeof code === "string" && typeof grpcCode === "string") return error as GraphQLError;
      // Parse failures and variables of the wrong type: the request is at fault.
      const parseFailure = cause.message.startsWith("Syntax Error");
      return new GraphQLError(cause.message, {
        ...located,
        extensions: {
          ...cause.extensions,
          code: typeof code === "string" ? code : parseFailure ? GRAPHQL_CODES.parseFailed : GRAPHQL_CODES.badUserInput,
          grpcCode: "invalid_argument",
        },
      });
    }
    logger.error({ err: cause, path: error instanceof GraphQLError ? error.path?.join(".") : undefined }, "graphql resolver failed");
    return new GraphQLError("the server failed to handle the request; retry later", {
      ...located,
      extensions: { code: GRAPHQL_CODES.internal, grpcCode: "internal" },
    });
  };
}

export type ErrorMapper = ReturnType<typeof createErrorMapper>;

/** Validation errors (yoga gives them GRAPHQL_VALIDATION_FAILED) get the Connect status too. */
export function addGrpcCode(errors: readonly Error[]): void {
  for (const error of errors) {
    if (error instanceof GraphQLError) (error.extensions as Record<string, unknown>).grpcCode ??= "invalid_argument";
  }
}
