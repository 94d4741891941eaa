import type { HandlerContext } from "@connectrpc/connect";
import type { AccountsService, Principal } from "../services/accounts/index.js";

/** Reads `Authorization: Bearer <token>` (HTTP header or gRPC metadata) and checks it. */
export function bearerAuthenticator(accounts: AccountsService) {
  return (context: HandlerContext): Promise<Principal> => {
    const header = context.requestHeader.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return accounts.authenticate(match?.[1]);
  };
}

export type Authenticate = ReturnType<typeof bearerAuthenticator>;
