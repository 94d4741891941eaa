import { randomUUID } from "node:crypto";

// A caller's id is kept so its logs and ours line up, but only if it is short and plain: it ends up in every log line of the call.
const USABLE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The id that ties a call's log lines together: the caller's `x-request-id`, or a new one. */
export function requestIdOf(headers: Headers): string {
  return requestIdFrom(headers.get("x-request-id"));
}

export function requestIdFrom(given: string | null): string {
  return given && USABLE.test(given) ? given : randomUUID();
}
