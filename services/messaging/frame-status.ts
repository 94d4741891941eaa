import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StatusSchema } from "../../gen/chat/v1/errors_pb.js";
import { ChatError, ErrorReason, type ErrorCode } from "../errors.js";

/** gRPC/Connect code numbers, for errors reported inside the stream rather than as its status. */
export const CODE_NUMBERS: Record<ErrorCode, number> = {
  invalid_argument: 3,
  not_found: 5,
  already_exists: 6,
  permission_denied: 7,
  resource_exhausted: 8,
  failed_precondition: 9,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
};

export function statusOf(error: unknown): MessageInitShape<typeof StatusSchema> {
  if (error instanceof ChatError) {
    return { code: CODE_NUMBERS[error.code], reason: error.reason, message: error.message, field: error.field };
  }
  return { code: CODE_NUMBERS.internal, reason: ErrorReason.INTERNAL, message: "the server failed to handle this frame; retry it" };
}
