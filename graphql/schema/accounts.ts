import { create } from "@bufbuild/protobuf";
import { SessionSchema, type Session } from "../../gen/chat/v1/accounts_pb.js";
import type { User } from "../../gen/chat/v1/types_pb.js";
import type { SessionView } from "../../services/accounts/index.js";
import { listSize, type Builder } from "../builder.js";
import { connectionType, sliceList } from "./connections.js";
import { attempt, type Outcome } from "./payloads.js";
import { toUser, type SharedTypes } from "./types.js";

const MAX_LOOKUP = 200;

const toSession = (view: SessionView): Session => create(SessionSchema, view);

/** Who you are, signing up and logging in: AccountsService. */
export function registerAccounts(builder: Builder, types: SharedTypes): void {
  const session = builder.objectRef<Session>("Session").implement({
    description: "A logged-in device. Send `accessToken` as `Authorization: Bearer <token>` (or as the `authorization` connection parameter over WebSocket).",
    fields: (t) => ({
      user: t.field({ type: types.user, description: "Who is logged in.", resolve: (s) => toUser(s.user ?? {}) }),
      deviceId: t.exposeID("deviceId", { description: "This device: its receipts, its push target and its subscriptions are its own." }),
      accessToken: t.exposeString("accessToken", { description: "Short-lived: when a call answers TOKEN_EXPIRED, call `refreshSession`." }),
      accessTokenExpiresAt: t.expose("accessTokenExpiresAt", { type: "DateTime", nullable: true, description: "When `accessToken` stops working." }),
      refreshToken: t.exposeString("refreshToken", { description: "Single use: `refreshSession` returns a new one." }),
    }),
  });

  const me = builder.objectRef<{ user: User; deviceId: string }>("Me").implement({
    description: "The caller: the user and the device the access token belongs to.",
    fields: (t) => ({
      user: t.expose("user", { type: types.user, description: "Your profile." }),
      deviceId: t.exposeID("deviceId", { description: "The device the access token belongs to." }),
    }),
  });

  builder.queryField("me", (t) =>
    t.field({
      type: me,
      description: "The caller.",
      resolve: async (_root, _args, ctx) => {
        const result = await ctx.services.accounts.getMe(await ctx.principal());
        return { user: toUser(result.user), deviceId: result.deviceId };
      },
    }),
  );

  const users = connectionType(builder, types.pageInfo, "User", types.user, "Users found by a look-up (unknown ids and names are left out).", true);

  builder.queryField("users", (t) =>
    t.field({
      type: users,
      description: `Looks users up by id and by username (at most ${MAX_LOOKUP} in all); unknown ones are left out.`,
      extensions: listSize({ countArguments: ["userIds", "usernames"], defaultSize: 0, maxSize: MAX_LOOKUP, sizedFields: ["edges", "nodes"] }),
      args: {
        userIds: t.arg.idList({ required: false, description: "User ids." }),
        usernames: t.arg.stringList({ required: false, description: "Usernames, in any letter case." }),
        first: t.arg.int({ required: false, description: "At most this many from the start (after `after`)." }),
        after: t.arg.string({ required: false, description: "An edge's cursor: the page starts after it." }),
      },
      resolve: async (_root, args, ctx) => {
        await ctx.principal();
        const found = await ctx.services.accounts.lookupUsers({ userIds: (args.userIds ?? []).map(String), usernames: args.usernames ?? [] });
        return sliceList(found.map(toUser), { first: args.first, after: args.after }, MAX_LOOKUP, MAX_LOOKUP);
      },
    }),
  );

  const sessionPayload = (name: string, description: string) =>
    builder.objectRef<Outcome<Session>>(name).implement({
      description,
      fields: (t) => ({
        session: t.field({ type: session, nullable: true, description: "The new session; null when `userErrors` says why not.", resolve: (o) => o.value }),
        userErrors: t.field({ type: [types.userError], description: "Why it did not happen; empty on success.", resolve: (o) => [...o.userErrors] }),
      }),
    });

  const signUpInput = builder.inputType("SignUpInput", {
    description: "A new account.",
    fields: (t) => ({
      username: t.string({ required: true, description: "3-32 characters: a-z, 0-9, '_', '.', '-' (lower-cased)." }),
      password: t.string({ required: true, description: "8-1024 characters." }),
      displayName: t.string({ required: false, description: "The name to show; none if left out." }),
      deviceName: t.string({ required: false, description: "A name for this device (\"Firefox on laptop\")." }),
    }),
  });

  builder.mutationField("signUp", (t) =>
    t.field({
      type: sessionPayload("SignUpPayload", "The account's first session, or why it was not created (USERNAME_TAKEN, USERNAME_INVALID, PASSWORD_TOO_WEAK)."),
      description: "Creates an account and logs its first device in.",
      args: { input: t.arg({ type: signUpInput, required: true, description: "The account." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () =>
          toSession(
            await ctx.services.accounts.signUp({
              username: input.username,
              password: input.password,
              displayName: input.displayName ?? "",
              deviceName: input.deviceName ?? "",
            }),
          ),
        ),
    }),
  );

  const logInInput = builder.inputType("LogInInput", {
    description: "Credentials.",
    fields: (t) => ({
      username: t.string({ required: true, description: "In any letter case." }),
      password: t.string({ required: true, description: "The account's password." }),
      deviceName: t.string({ required: false, description: "A name for this device." }),
    }),
  });

  builder.mutationField("logIn", (t) =>
    t.field({
      type: sessionPayload("LogInPayload", "A new session, or BAD_CREDENTIALS."),
      description: "Logs a new device in.",
      args: { input: t.arg({ type: logInInput, required: true, description: "The credentials." }) },
      resolve: (_root, { input }, ctx) =>
        attempt(async () => toSession(await ctx.services.accounts.logIn({ username: input.username, password: input.password, deviceName: input.deviceName ?? "" }, ctx.clientAddress))),
    }),
  );

  const refreshInput = builder.inputType("RefreshSessionInput", {
    description: "A refresh token.",
    fields: (t) => ({ refreshToken: t.string({ required: true, description: "`refreshToken` of the current session (single use)." }) }),
  });

  builder.mutationField("refreshSession", (t) =>
    t.field({
      type: sessionPayload("RefreshSessionPayload", "The renewed session, or REFRESH_TOKEN_INVALID (log in again)."),
      description: "Trades a refresh token for a new access token (and a new refresh token).",
      args: { input: t.arg({ type: refreshInput, required: true, description: "The refresh token." }) },
      resolve: (_root, { input }, ctx) => attempt(async () => toSession(await ctx.services.accounts.refresh(input.refreshToken))),
    }),
  );

  const logOutPayload = builder.objectRef<Outcome<string>>("LogOutPayload").implement({
    description: "The device that was logged out.",
    fields: (t) => ({
      deviceId: t.id({ nullable: true, description: "The device logged out.", resolve: (o) => o.value }),
      userErrors: t.field({ type: [types.userError], description: "Always empty: logging out cannot fail for a valid token.", resolve: (o) => [...o.userErrors] }),
    }),
  });

  builder.mutationField("logOut", (t) =>
    t.field({
      type: logOutPayload,
      description: "Logs this device out: its tokens stop working and its subscriptions end.",
      resolve: (_root, _args, ctx) =>
        attempt(async () => {
          const principal = await ctx.principal();
          await ctx.services.accounts.logOut(principal);
          return principal.deviceId;
        }),
    }),
  );
}
