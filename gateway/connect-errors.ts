import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ErrorDetailSchema, ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { ChatError, type ErrorCode } from "../services/errors.js";
import type { Logger } from "./logger.js";

const CODES: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

function withReason(message: string, code: Code, reason: ErrorReason, field = "", metadata: Record<string, string> = {}): ConnectError {
  return new ConnectError(message, code, undefined, [{ desc: ErrorDetailSchema, value: { reason, field, metadata } }]);
}

/**
 * The one place where errors become what a client sees: domain errors keep their code and reason;
 * a request the framework could not decode is the client's malformed frame; anything else is logged
 * and reported as a bare internal error, so driver messages never reach a client.
 */
export function toConnectError(error: unknown, logger: Logger, method: string, countError?: CountError): ConnectError {
  const converted = convert(error, logger, method);
  if (countError) {
    const detail = converted.findDetails(ErrorDetailSchema)[0];
    countError(converted.code, detail?.reason ?? ErrorReason.UNSPECIFIED);
  }
  return converted;
}

/** Counts an error by its code number and reason; both come from closed enums, so labels stay bounded. */
export type CountError = (code: number, reason: ErrorReason) => void;

function convert(error: unknown, logger: Logger, method: string): ConnectError {
  if (error instanceof ChatError) {
    return withReason(error.message, CODES[error.code], error.reason, error.field, { ...error.metadata });
  }
  if (error instanceof ConnectError) {
    if (error.rawMessage.startsWith("parse binary") || (error.code === Code.InvalidArgument && error.details.length === 0)) {
      return withReason(`the request could not be decoded (${error.rawMessage}); send a valid ${method} message`, Code.InvalidArgument, ErrorReason.MALFORMED_FRAME);
    }
    if (error.code === Code.ResourceExhausted && error.details.length === 0) {
      return withReason(error.rawMessage, Code.ResourceExhausted, ErrorReason.INVALID_ARGUMENT);
    }
    return error;
  }
  logger.error({ err: error, method }, "handler failed");
  return withReason("the server failed to handle the request; retry later", Code.Internal, ErrorReason.INTERNAL);
}

type AnyHandler = (request: never, context: HandlerContext) => unknown;

/** Wraps every method of a service implementation so its errors go through `toConnectError`. */
export function mapErrors<T extends Record<string, AnyHandler>>(serviceName: string, impl: T, logger: Logger, countError?: CountError): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(impl)) {
    const method = `${serviceName}.${name}`;
    const fn = handler as (request: unknown, context: HandlerContext) => unknown;
    wrapped[name] = function (request: unknown, context: HandlerContext) {
      const result = fn(request, context);
      if (result && typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
        return (async function* () {
          try {
            yield* result as AsyncIterable<unknown>;
          } catch (error) {
            throw toConnectError(error, logger, method, countError);
          }
        })();
      }
      return (result as Promise<unknown>).catch((error: unknown) => {
        throw toConnectError(error, logger, method, countError);
      });
    };
  }
  return wrapped as T;
}
