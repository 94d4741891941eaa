import type { HandlerContext } from "@connectrpc/connect";
import type { AccountsService, Principal } from "../services/accounts/index.js";

/** The token of an `Authorization: Bearer <token>` header (HTTP header or gRPC metadata), if that is its form. */
export function bearerTokenOf(header: string | null | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
}

/** Checks the call's bearer token. */
export function bearerAuthenticator(accounts: AccountsService) {
  return (context: HandlerContext): Promise<Principal> => accounts.authenticate(bearerTokenOf(context.requestHeader.get("authorization")));
}

export type Authenticate = ReturnType<typeof bearerAuthenticator>;
