import { create } from "@bufbuild/protobuf";
import { SessionSchema, type Session } from "../../gen/chat/v1/accounts_pb.js";
import type { User } from "../../gen/chat/v1/types_pb.js";
import type { SessionView } from "../../services/accounts/index.js";
import { listSize, type Builder } from "../builder.js";
import { toUser, type SharedTypes } from "./types.js";

const MAX_LOOKUP = 200;

const toSession = (view: SessionView): Session => create(SessionSchema, view);

/** Who you are, signing up and logging in: AccountsService. */
export function registerAccounts(builder: Builder, types: SharedTypes): void {
  const session = builder.objectRef<Session>("Session").implement({
    description: "A logged-in device. Send `accessToken` as `Authorization: Bearer <token>` (or as the `authorization` connection parameter over WebSocket).",
    fields: (t) => ({
      user: t.field({ type: types.user, resolve: (s) => toUser(s.user ?? {}) }),
      deviceId: t.exposeID("deviceId"),
      accessToken: t.exposeString("accessToken"),
      accessTokenExpiresAt: t.expose("accessTokenExpiresAt", { type: "DateTime", nullable: true }),
      refreshToken: t.exposeString("refreshToken", { description: "Single use: `refreshSession` returns a new one." }),
    }),
  });

  const me = builder.objectRef<{ user: User; deviceId: string }>("Me").implement({
    description: "The caller: the user and the device the access token belongs to.",
    fields: (t) => ({
      user: t.expose("user", { type: types.user }),
      deviceId: t.exposeID("deviceId"),
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

  builder.queryField("users", (t) =>
    t.field({
      type: [types.user],
      description: `Looks users up by id and by username (at most ${MAX_LOOKUP} in all); unknown ones are left out.`,
      extensions: listSize({ countArguments: ["ids", "usernames"], defaultSize: 0, maxSize: MAX_LOOKUP }),
      args: {
        ids: t.arg.idList({ required: false }),
        usernames: t.arg.stringList({ required: false }),
      },
      resolve: async (_root, args, ctx) => {
        await ctx.principal();
        const users = await ctx.services.accounts.lookupUsers({ userIds: (args.ids ?? []).map(String), usernames: args.usernames ?? [] });
        return users.map(toUser);
      },
    }),
  );

  builder.mutationField("signUp", (t) =>
    t.field({
      type: session,
      description: "Creates an account and logs its first device in.",
      args: {
        username: t.arg.string({ required: true, description: "3-32 characters: a-z, 0-9, '_', '.', '-' (lower-cased)." }),
        password: t.arg.string({ required: true, description: "8-1024 characters." }),
        displayName: t.arg.string({ required: false }),
        deviceName: t.arg.string({ required: false }),
      },
      resolve: async (_root, args, ctx) =>
        toSession(
          await ctx.services.accounts.signUp({
            username: args.username,
            password: args.password,
            displayName: args.displayName ?? "",
            deviceName: args.deviceName ?? "",
          }),
        ),
    }),
  );

  builder.mutationField("logIn", (t) =>
    t.field({
      type: session,
      description: "Logs a new device in.",
      args: {
        username: t.arg.string({ required: true }),
        password: t.arg.string({ required: true }),
        deviceName: t.arg.string({ required: false }),
      },
      resolve: async (_root, args, ctx) =>
        toSession(
          await ctx.services.accounts.logIn({ username: args.username, password: args.password, deviceName: args.deviceName ?? "" }, ctx.clientAddress),
        ),
    }),
  );

  builder.mutationField("refreshSession", (t) =>
    t.field({
      type: session,
      description: "Trades a refresh token for a new access token (and a new refresh token).",
      args: { refreshToken: t.arg.string({ required: true }) },
      resolve: async (_root, args, ctx) => toSession(await ctx.services.accounts.refresh(args.refreshToken)),
    }),
  );

  builder.mutationField("logOut", (t) =>
    t.field({
      type: "Boolean",
      description: "Logs this device out: its tokens stop working and its subscriptions end.",
      resolve: async (_root, _args, ctx) => {
        await ctx.services.accounts.logOut(await ctx.principal());
        return true;
      },
    }),
  );
}
