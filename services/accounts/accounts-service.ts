import { createHash, randomBytes } from "node:crypto";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ChatError, ErrorReason, invalidArgument, unauthenticated } from "../errors.js";
import { newId } from "../lib/ids.js";
import type { AccountStore, EventBus, UserRecord } from "../ports/index.js";
import { createPasswordHasher, type PasswordHasher } from "./password-hash.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { AccessTokenSigner, Principal } from "./access-tokens.js";

export interface UserView {
  userId: string;
  username: string;
  displayName: string;
  createdAt: Timestamp;
}

export interface SessionView {
  user: UserView;
  deviceId: string;
  accessToken: string;
  accessTokenExpiresAt: Timestamp;
  refreshToken: string;
}

export interface AccountsServiceOptions {
  readonly store: AccountStore;
  readonly bus: EventBus;
  readonly tokens: AccessTokenSigner;
  /** log2 of scrypt's N. */
  readonly passwordCost: number;
  readonly refreshTokenTtlSeconds: number;
  /** Where passwords are hashed; by default a pool of its own (see password-hash.ts). */
  readonly hasher?: PasswordHasher;
  /** Asked before each login attempt; refuses with RATE_LIMITED. None: logins are not throttled. */
  readonly loginThrottle?: LoginThrottle;
  readonly now?: () => Date;
}

const USERNAME = /^[a-z0-9_.-]{3,32}$/;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;
const MAX_NAME = 100;
const MAX_LOOKUP = 200;

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

export function toUserView(user: UserRecord): UserView {
  return { userId: user.userId, username: user.username, displayName: user.displayName, createdAt: timestampFromDate(user.createdAt) };
}

export type AccountsService = ReturnType<typeof createAccountsService>;

export function createAccountsService(options: AccountsServiceOptions) {
  const { store, tokens, bus } = options;
  const now = options.now ?? (() => new Date());
  const hasher = options.hasher ?? createPasswordHasher();

  async function openDevice(user: UserRecord, deviceName: string): Promise<SessionView> {
    const at = now();
    const deviceId = newId("dev", at.getTime());
    const refreshToken = `${deviceId}.${randomBytes(32).toString("base64url")}`;
    await store.createDevice({
      deviceId,
      userId: user.userId,
      name: deviceName.slice(0, MAX_NAME),
      createdAt: at,
      refreshTokenHash: sha256(refreshToken),
      refreshExpiresAt: new Date(at.getTime() + options.refreshTokenTtlSeconds * 1000),
    });
    const access = tokens.sign({ userId: user.userId, deviceId }, at);
    return { user: toUserView(user), deviceId, accessToken: access.token, accessTokenExpiresAt: timestampFromDate(access.expiresAt), refreshToken };
  }

  function checkPassword(password: string): void {
    if (password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) {
      throw invalidArgument(ErrorReason.PASSWORD_TOO_WEAK, `the password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters long`, "password", {
        min: String(MIN_PASSWORD),
      });
    }
  }

  const badCredentials = () => unauthenticated(ErrorReason.BAD_CREDENTIALS, "unknown username or wrong password");

  return {
    async signUp(input: { username: string; password: string; displayName: string; deviceName: string }): Promise<SessionView> {
      const username = input.username.trim().toLowerCase();
      if (!USERNAME.test(username)) {
        throw invalidArgument(ErrorReason.USERNAME_INVALID, "a username is 3-32 characters: a-z, 0-9, '_', '.', '-'", "username");
      }
      checkPassword(input.password);
      if (input.displayName.length > MAX_NAME) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `the display name is longer than ${MAX_NAME} characters`, "display_name");
      }
      const user: UserRecord = {
        userId: newId("u"),
        username,
        displayName: input.displayName.trim() || username,
        passwordHash: await hasher.hash(input.password, options.passwordCost),
        createdAt: now(),
      };
      if (!(await store.createUser(user))) {
        throw new ChatError("already_exists", ErrorReason.USERNAME_TAKEN, `the username "${username}" is taken; choose another`, "username");
      }
      return openDevice(user, input.deviceName);
    },

    /** `clientAddress`: who is asking, as the transport sees it; throttling is per account and per address. */
    async logIn(input: { username: string; password: string; deviceName: string }, clientAddress = ""): Promise<SessionView> {
      const username = input.username.trim().toLowerCase();
      if (input.password.length > MAX_PASSWORD) throw badCredentials();
      await options.loginThrottle?.(username, clientAddress);
      const user = await store.findUserByUsername(username);
      if (!user) {
        // Spend the same time as a wrong password so the answer does not reveal which usernames exist.
        await hasher.hash(input.password, options.passwordCost);
        throw badCredentials();
      }
      if (!(await hasher.verify(input.password, user.passwordHash))) throw badCredentials();
      return openDevice(user, input.deviceName);
    },

    async refresh(refreshToken: string): Promise<SessionView> {
      const invalid = () =>
        unauthenticated(ErrorReason.REFRESH_TOKEN_INVALID, "the refresh token is unknown, already used, expired or revoked; log in again");
      const deviceId = refreshToken.split(".")[0] ?? "";
      const device = deviceId ? await store.getDevice(deviceId) : undefined;
      const at = now();
      if (!device || device.revokedAt || device.refreshExpiresAt <= at) throw invalid();
      const next = `${deviceId}.${randomBytes(32).toString("base64url")}`;
      const rotated = await store.rotateRefreshToken(
        deviceId,
        sha256(refreshToken),
        sha256(next),
        new Date(at.getTime() + options.refreshTokenTtlSeconds * 1000),
      );
      if (!rotated) throw invalid();
      const [user] = await store.findUsersByIds([device.userId]);
      if (!user) throw invalid();
      const access = tokens.sign({ userId: user.userId, deviceId }, at);
      return { user: toUserView(user), deviceId, accessToken: access.token, accessTokenExpiresAt: timestampFromDate(access.expiresAt), refreshToken: next };
    },

    async logOut(principal: Principal): Promise<void> {
      await store.revokeDevice(principal.deviceId, now());
      await bus.publish([principal.userId], { kind: "device-revoked", deviceId: principal.deviceId });
    },

    /** Verifies the bearer token and that its device is still logged in. */
    async authenticate(token: string | undefined): Promise<Principal> {
      if (!token) {
        throw unauthenticated(ErrorReason.TOKEN_MISSING, "send the access token from LogIn as 'Authorization: Bearer <token>'");
      }
      const principal = tokens.verify(token, now());
      const device = await store.getDevice(principal.deviceId);
      if (!device || device.revokedAt || device.userId !== principal.userId) {
        throw unauthenticated(ErrorReason.DEVICE_REVOKED, "this device has logged out; log in again");
      }
      return principal;
    },

    async getMe(principal: Principal): Promise<{ user: UserView; deviceId: string }> {
      const [user] = await store.findUsersByIds([principal.userId]);
      if (!user) throw unauthenticated(ErrorReason.DEVICE_REVOKED, "the account no longer exists");
      return { user: toUserView(user), deviceId: principal.deviceId };
    },

    async lookupUsers(input: { usernames: readonly string[]; userIds: readonly string[] }): Promise<UserView[]> {
      if (input.usernames.length + input.userIds.length > MAX_LOOKUP) {
        throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `look up at most ${MAX_LOOKUP} users per call`, "usernames", { max: String(MAX_LOOKUP) });
      }
      const [byName, byId] = await Promise.all([
        input.usernames.length ? store.findUsersByUsernames(input.usernames.map((name) => name.trim().toLowerCase())) : [],
        input.userIds.length ? store.findUsersByIds(input.userIds) : [],
      ]);
      const seen = new Map<string, UserRecord>();
      for (const user of [...byName, ...byId]) seen.set(user.userId, user);
      return [...seen.values()].map(toUserView);
    },
  };
}
