import { ErrorReason, invalidArgument } from "../../services/errors.js";

const SEQ_CURSOR = /^(0|[1-9][0-9]{0,19})$/;

/** A message connection's cursor: the message's seq, in decimal. */
export function seqCursor(raw: string | null | undefined, argument: string): bigint | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (!SEQ_CURSOR.test(raw)) {
    throw invalidArgument(ErrorReason.INVALID_CURSOR, `${argument} is a cursor from this connection (a message's seq, in decimal)`, argument);
  }
  return BigInt(raw);
}

/** `first`/`last` as the services' `limit` (0: their default). Above the cap the service refuses with PAGE_SIZE_TOO_LARGE, as for Connect. */
export function pageSize(value: number | null | undefined, argument: string): number {
  if (value === null || value === undefined) return 0;
  if (value < 1) throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `${argument} must be at least 1`, argument);
  return value;
}
