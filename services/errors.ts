import { ErrorReason } from "../gen/chat/v1/errors_pb.js";

export { ErrorReason };

/**
 * The Connect/gRPC status codes the domain uses. Kept as a local union so services do not depend on
 * a transport package; the gateway maps them one to one onto Connect's Code enum.
 */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "unauthenticated"
  | "resource_exhausted"
  | "failed_precondition"
  | "unavailable"
  | "unimplemented"
  | "internal";

/** A domain error every surface turns into a typed error: a code, a reason, and words for a person. */
export class ChatError extends Error {
  override readonly name = "ChatError";
  constructor(
    readonly code: ErrorCode,
    readonly reason: ErrorReason,
    message: string,
    readonly field = "",
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export const invalidArgument = (reason: ErrorReason, message: string, field = "", metadata: Record<string, string> = {}) =>
  new ChatError("invalid_argument", reason, message, field, metadata);

/**
 * An id the request must carry. Checked before any look-up, so a request that names nothing is told
 * so (INVALID_ARGUMENT with the field) rather than that it may not see what it did not name.
 */
export function requireId(value: string | undefined, field: string): void {
  if (!value || value.trim() === "") throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `${field} is required`, field);
}

export const unauthenticated = (reason: ErrorReason, message: string) => new ChatError("unauthenticated", reason, message);

export const permissionDenied = (reason: ErrorReason, message: string, field = "") =>
  new ChatError("permission_denied", reason, message, field);

export const notFound = (reason: ErrorReason, message: string, field = "") => new ChatError("not_found", reason, message, field);
