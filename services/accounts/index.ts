export { createAccessTokenSigner } from "./access-tokens.js";
export type { AccessToken, AccessTokenSigner, Principal } from "./access-tokens.js";
export { createAccountsService, toUserView } from "./accounts-service.js";
export type { AccountsService, AccountsServiceOptions, SessionView, UserView } from "./accounts-service.js";
export { createPasswordHasher } from "./password-hash.js";
export type { PasswordHasher, PasswordHasherOptions } from "./password-hash.js";
export { createLoginThrottle, rateLimited } from "./login-throttle.js";
export type { LoginLimiters, LoginThrottle } from "./login-throttle.js";
