export { createAccessTokenSigner } from "./access-tokens.js";
export type { AccessToken, AccessTokenSigner, Principal } from "./access-tokens.js";
export { createAccountsService, toUserView } from "./accounts-service.js";
export type { AccountsService, AccountsServiceOptions, SessionView, UserView } from "./accounts-service.js";
export { hashPassword, verifyPassword } from "./password-hash.js";
