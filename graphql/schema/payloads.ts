import { ChatError, ErrorReason } from "../../services/errors.js";
import type { Builder } from "../builder.js";
import { reasonName } from "../errors.js";

/** An expected failure of a mutation, in its payload rather than in `errors`. */
export interface UserError {
  readonly code: string;
  readonly message: string;
  readonly field: string | null;
}

/** What a mutation resolves to: its result, or the user errors that kept it from happening. */
export interface Outcome<T> {
  readonly value: T | null;
  readonly userErrors: readonly UserError[];
}

/**
 * The reasons a client is expected to handle as part of a mutation's answer (bad input, a missing or
 * forbidden target, a name taken): the reasons from REFRESH_TOKEN_INVALID up to the transport ones.
 * Missing or expired access tokens, rate limits, draining and internal failures stay in `errors`,
 * because no retry of the same input can fix them and HTTP carries them (401, 429, 503).
 */
function isUserFacing(error: unknown): error is ChatError {
  return (
    error instanceof ChatError &&
    error.reason >= ErrorReason.REFRESH_TOKEN_INVALID &&
    error.reason < ErrorReason.RATE_LIMITED &&
    error.reason !== ErrorReason.MALFORMED_FRAME &&
    error.reason !== ErrorReason.HELLO_REQUIRED
  );
}

const snakeToCamel = (field: string) => field.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());

/**
 * The services name inputs as the proto does (`conversation_id`, `limit`, `page_token`); a GraphQL
 * client should read the names of its own arguments. `names` maps a proto field to a GraphQL input
 * field where they differ by more than letter case; the message is rewritten to match.
 */
export function inGraphQLTerms(error: ChatError, names: Readonly<Record<string, string>> = {}): ChatError {
  const words = new Map<string, string>();
  const rename = (proto: string) => names[proto] ?? snakeToCamel(proto);
  for (const match of error.message.matchAll(/\b[a-z]+(?:_[a-z]+)+\b/g)) words.set(match[0], rename(match[0]));
  for (const proto of Object.keys(names)) words.set(proto, names[proto]!);
  let message = error.message;
  for (const [proto, graphql] of words) message = message.replace(new RegExp(`\\b${proto}\\b`, "g"), graphql);
  const field = error.field ? rename(error.field) : "";
  if (message === error.message && field === error.field) return error;
  return new ChatError(error.code, error.reason, message, field, error.metadata);
}

/**
 * Runs a mutation: an expected failure becomes `userErrors` (with `data` for the rest of the
 * operation intact); anything else is thrown for `errors`, in GraphQL terms.
 */
export async function attempt<T>(run: () => Promise<T>, names?: Readonly<Record<string, string>>): Promise<Outcome<T>> {
  try {
    return { value: await run(), userErrors: [] };
  } catch (error) {
    if (!(error instanceof ChatError)) throw error;
    const renamed = inGraphQLTerms(error, names);
    if (!isUserFacing(renamed)) throw renamed;
    return { value: null, userErrors: [{ code: reasonName(renamed.reason), message: renamed.message, field: renamed.field || null }] };
  }
}

/** The `UserError` type every payload lists. */
export function registerUserError(builder: Builder) {
  return builder.objectRef<UserError>("UserError").implement({
    description:
      "Why a mutation did not happen, for a failure the client is expected to handle (bad input, a target that does not exist or is not " +
      "yours, a name taken). The payload's other fields are null then. Authentication, rate limits and outages are reported in `errors` instead.",
    fields: (t) => ({
      code: t.exposeString("code", { description: "The reason, as in `errors[].extensions.code`: `TEXT_TOO_LONG`, `NOT_A_MEMBER`, `USERNAME_TAKEN`, ..." }),
      message: t.exposeString("message", { description: "For people: what was wrong and how to fix it." }),
      field: t.exposeString("field", { nullable: true, description: "The input field at fault (`text`, `conversationId`, ...), when there is one." }),
    }),
  });
}
