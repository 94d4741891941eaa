import type { AccountsService, Principal } from "../services/accounts/index.js";
import type { AttachmentsService } from "../services/attachments/index.js";
import type { GroupsService } from "../services/groups/index.js";
import type { DeviceSessionOptions, MessagingService, TypingNotifier } from "../services/messaging/index.js";
import type { SessionRegistry } from "../services/ports/index.js";
import type { PresenceService } from "../services/presence/index.js";
import type { PushService } from "../services/push/index.js";
import type { SyncService } from "../services/sync/index.js";

/** The same service objects the Connect handlers call; GraphQL adds no chat logic of its own. */
export interface GraphQLServices {
  readonly accounts: AccountsService;
  readonly messaging: MessagingService;
  readonly sync: SyncService;
  readonly groups: GroupsService;
  readonly typing: TypingNotifier;
  readonly presence: PresenceService;
  readonly attachments: AttachmentsService;
  readonly push: PushService;
  /** Subscriptions are device sessions (the Connect stream's engine) fed by the server itself. */
  readonly deviceSession: DeviceSessionOptions;
  /** Where this gateway records the devices it holds, so other gateways route their events here. */
  readonly sessions: SessionRegistry;
}

export interface GraphQLContext {
  readonly services: GraphQLServices;
  /**
   * The caller, from `Authorization: Bearer <token>` (HTTP) or the `authorization` connection
   * parameter (WebSocket). Checked on first use, once per operation, like every Connect call; fields
   * that anyone may use (signUp, logIn) never ask.
   */
  principal(): Promise<Principal>;
  /** Who is asking, as the transport sees it (login throttling is per address). */
  readonly clientAddress: string;
}

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * The token from an `Authorization` header value; as in gateway/authenticate.ts, anything else counts
 * as no token (TOKEN_MISSING). A WebSocket client cannot set headers, so it puts the same string in
 * `connectionParams.authorization`, where a bare token is accepted too.
 */
export function bearerToken(value: unknown, allowBare = false): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  const match = BEARER.exec(value);
  if (match) return match[1];
  return allowBare && !/\s/.test(value) ? value : undefined;
}

interface ContextState extends GraphQLContext {
  readonly token: string | undefined;
  pending: Promise<Principal> | undefined;
}

/**
 * One function for every context, called as a method, rather than a closure per context: one context
 * is kept per open subscription, and under tsx every named closure also carries a property table
 * (esbuild's keepNames). An own property, not a class method, because yoga copies the context's own
 * properties into its own object.
 */
function principalOf(this: ContextState): Promise<Principal> {
  return (this.pending ??= this.services.accounts.authenticate(this.token));
}

export function createContext(services: GraphQLServices, token: string | undefined, clientAddress = ""): GraphQLContext {
  const context: ContextState = { services, token, clientAddress, pending: undefined, principal: principalOf };
  return context;
}

/** Reads `authorization` from WebSocket connection parameters (any letter case of the key). */
export function connectionParamsToken(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const key = params && Object.keys(params).find((name) => name.toLowerCase() === "authorization");
  return key === undefined ? undefined : bearerToken(params![key], true);
}
