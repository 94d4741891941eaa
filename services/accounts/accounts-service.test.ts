import { createHash, scryptSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryBus } from "../../backends/bus-memory/index.js";
import { createSqliteStore, type SqliteStore } from "../../backends/store-sqlite/index.js";
import { ChatError, ErrorReason } from "../errors.js";
import { createAccessTokenSigner } from "./access-tokens.js";
import { createAccountsService, type AccountsService } from "./accounts-service.js";

const PASSWORD = "correct horse battery";
// The lowest cost scrypt accepts keeps the test fast; the encoding carries it, so nothing else changes.
const COST = 4;

describe("accounts: what is stored for a password and a refresh token", () => {
  let store: SqliteStore;
  let accounts: AccountsService;
  beforeEach(() => {
    store = createSqliteStore({ path: ":memory:" });
    accounts = createAccountsService({
      store: store.accounts,
      bus: createMemoryBus(),
      tokens: createAccessTokenSigner(Buffer.alloc(32, 7), 600),
      passwordCost: COST,
      refreshTokenTtlSeconds: 3_600,
    });
  });
  afterEach(async () => {
    await store.close();
  });

  it("stores a salted scrypt key of the password, never the password", async () => {
    await accounts.signUp({ username: "Alice", password: PASSWORD, displayName: "Alice", deviceName: "phone" });
    const stored = (await store.accounts.findUserByUsername("alice"))!.passwordHash;
    expect(stored).not.toContain(PASSWORD);
    const [scheme, cost, blockSize, parallelism, salt, key] = stored.split("$");
    expect([scheme, cost, blockSize, parallelism]).toEqual(["scrypt", String(COST), "8", "1"]);
    // Derived independently here: the stored key is scrypt of this password with this salt and cost.
    const expected = scryptSync(PASSWORD.normalize("NFKC"), Buffer.from(salt!, "base64url"), 32, { N: 2 ** COST, r: 8, p: 1 });
    expect(Buffer.from(key!, "base64url").equals(expected)).toBe(true);
  });

  it("salts each password on its own: the same password stores two different keys", async () => {
    await accounts.signUp({ username: "alice", password: PASSWORD, displayName: "", deviceName: "phone" });
    await accounts.signUp({ username: "bob", password: PASSWORD, displayName: "", deviceName: "phone" });
    const [alice, bob] = await store.accounts.findUsersByUsernames(["alice", "bob"]);
    expect(alice!.passwordHash.split("$")[4]).not.toBe(bob!.passwordHash.split("$")[4]);
    expect(alice!.passwordHash).not.toBe(bob!.passwordHash);
  });

  it("logs in with the password, and refuses a wrong one or an unknown user with the same error", async () => {
    await accounts.signUp({ username: "alice", password: PASSWORD, displayName: "", deviceName: "phone" });
    const session = await accounts.logIn({ username: " ALICE ", password: PASSWORD, deviceName: "laptop" });
    expect(session.user.username).toBe("alice");
    for (const attempt of [
      { username: "alice", password: `${PASSWORD}!` },
      { username: "alice", password: PASSWORD.toUpperCase() },
      { username: "nobody", password: PASSWORD },
    ]) {
      const error = await accounts.logIn({ ...attempt, deviceName: "laptop" }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ChatError);
      expect(error).toMatchObject({ code: "unauthenticated", reason: ErrorReason.BAD_CREDENTIALS });
    }
  });

  it("refuses a stored value that is the password itself", async () => {
    // An account whose stored "hash" is the plain password must not open with that password.
    await store.accounts.createUser({ userId: "u_plain", username: "plain", displayName: "", passwordHash: PASSWORD, createdAt: new Date() });
    await expect(accounts.logIn({ username: "plain", password: PASSWORD, deviceName: "phone" })).rejects.toMatchObject({ reason: ErrorReason.BAD_CREDENTIALS });
  });

  it("stores only a SHA-256 of the refresh token, and a refresh token works once", async () => {
    const session = await accounts.signUp({ username: "alice", password: PASSWORD, displayName: "", deviceName: "phone" });
    const device = (await store.accounts.getDevice(session.deviceId))!;
    expect(device.refreshTokenHash).toBe(createHash("sha256").update(session.refreshToken).digest("hex"));
    expect(device.refreshTokenHash).not.toContain(session.refreshToken.split(".")[1]);
    const next = await accounts.refresh(session.refreshToken);
    expect(next.refreshToken).not.toBe(session.refreshToken);
    await expect(accounts.refresh(session.refreshToken)).rejects.toMatchObject({ reason: ErrorReason.REFRESH_TOKEN_INVALID });
  });

  it("refuses a password outside 8-1024 characters and stores nothing", async () => {
    for (const password of ["short", "x".repeat(1_025)]) {
      await expect(accounts.signUp({ username: "alice", password, displayName: "", deviceName: "phone" })).rejects.toMatchObject({
        code: "invalid_argument",
        reason: ErrorReason.PASSWORD_TOO_WEAK,
      });
    }
    expect(await store.accounts.findUserByUsername("alice")).toBeUndefined();
  });

  it("refuses a username outside 3-32 of a-z 0-9 _ . - and a lookup of more than 200 users", async () => {
    for (const username of ["ab", "x".repeat(33), "bad name", "émile", "a/b"]) {
      await expect(accounts.signUp({ username, password: PASSWORD, displayName: "", deviceName: "phone" })).rejects.toMatchObject({
        code: "invalid_argument",
        reason: ErrorReason.USERNAME_INVALID,
      });
    }
    const many = Array.from({ length: 201 }, (_, i) => `user${i}`);
    await expect(accounts.lookupUsers({ usernames: many, userIds: [] })).rejects.toMatchObject({ code: "invalid_argument", field: "usernames" });
    expect(await accounts.lookupUsers({ usernames: many.slice(0, 200), userIds: [] })).toEqual([]);
  });
});
