import { errors, types } from "cassandra-driver";

/** Appending to (or changing) a conversation that does not exist: a bug in the caller, which checks membership first. */
export class UnknownConversationError extends Error {
  override readonly name = "UnknownConversationError";
  constructor(readonly conversationId: string) {
    super(`conversation "${conversationId}" does not exist`);
  }
}

/**
 * The sequencer lost its compare-and-set race too many times in a row (many gateways hammering one
 * conversation, or a node that keeps timing out). Nothing was stored for the messages it rejects.
 */
export class SequencerContentionError extends Error {
  override readonly name = "SequencerContentionError";
  constructor(
    readonly conversationId: string,
    readonly attempts: number,
    override readonly cause?: unknown,
  ) {
    super(`could not take the next seq of conversation "${conversationId}" after ${attempts} attempts${cause instanceof Error ? ` (last error: ${cause.message})` : ""}`);
  }
}

/** An idempotency key that already names a different kind of entry (e.g. a text message reused for a group change). */
export class IdempotencyKeyConflictError extends Error {
  override readonly name = "IdempotencyKeyConflictError";
  constructor(
    readonly conversationId: string,
    readonly senderUserId: string,
    readonly clientMsgId: string,
  ) {
    super(`(${senderUserId}, ${clientMsgId}) already names another entry of conversation "${conversationId}"`);
  }
}

/** The conversation id of a new group is taken. */
export class ConversationExistsError extends Error {
  override readonly name = "ConversationExistsError";
  constructor(readonly conversationId: string) {
    super(`conversation "${conversationId}" already exists`);
  }
}

const UNKNOWN_OUTCOME_CODES = new Set<number>([types.responseErrorCodes.writeTimeout, types.responseErrorCodes.writeFailure]);
const NOT_APPLIED_CODES = new Set<number>([
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.readFailure,
]);

/**
 * How a failed write may have ended. `unknown`: it may or may not have been applied (a timeout after
 * the request left), so a retry must be idempotent; `not-applied`: the coordinator refused it before
 * writing, a plain retry is safe; `fatal`: retrying cannot help (a bad statement, a value too large).
 */
export function classifyWriteError(error: unknown): "unknown" | "not-applied" | "fatal" {
  if (error instanceof errors.OperationTimedOutError) return "unknown";
  if (error instanceof errors.NoHostAvailableError) {
    const inner = Object.values((error.innerErrors ?? {}) as Record<string, unknown>);
    return inner.some((each) => classifyWriteError(each) === "unknown") ? "unknown" : "not-applied";
  }
  if (error instanceof errors.ResponseError) {
    if (UNKNOWN_OUTCOME_CODES.has(error.code)) return "unknown";
    if (NOT_APPLIED_CODES.has(error.code)) return "not-applied";
    return "fatal";
  }
  // A socket closed mid-request surfaces as a plain error from the connection.
  if (error instanceof errors.DriverError) return "unknown";
  return "fatal";
}
