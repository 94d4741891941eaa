import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountsService as AccountsServiceDesc } from "../../gen/chat/v1/accounts_pb.js";
import type { AccountsService } from "../../services/accounts/index.js";
import type { Authenticate } from "../authenticate.js";
import { kClientAddress } from "../client-address.js";

export function accountsHandlers(accounts: AccountsService, authenticate: Authenticate): ServiceImpl<typeof AccountsServiceDesc> {
  return {
    async signUp(request) {
      return { session: await accounts.signUp(request) };
    },
    async logIn(request, context) {
      return { session: await accounts.logIn(request, context.values.get(kClientAddress)) };
    },
    async refresh(request) {
      return { session: await accounts.refresh(request.refreshToken) };
    },
    async logOut(_request, context) {
      await accounts.logOut(await authenticate(context));
      return {};
    },
    async getMe(_request, context) {
      return accounts.getMe(await authenticate(context));
    },
    async lookupUsers(request, context) {
      await authenticate(context);
      return { users: await accounts.lookupUsers(request) };
    },
  };
}
