import { Code } from "@connectrpc/connect";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient } from "../clients/sdk/index.js";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { expectChatError } from "./support/errors.js";
import { graphqlData, graphqlHttp } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD } from "./support/users.js";

/** A username is stored lower-cased: capitals at sign-up are normalised, not refused, on every API. */
describe("usernames with capitals", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("signs up as the lower-cased name, logs in and is found with any case, and the name is taken in every case", async () => {
    const tag = randomBytes(3).toString("hex");
    const typed = ` Mixed.Case_${tag} `;
    const stored = `mixed.case_${tag}`;

    const client = new ChatClient({ baseUrl: server.url });
    const session = await client.signUp(typed, PASSWORD);
    expect(session.user!.username).toBe(stored);

    const again = new ChatClient({ baseUrl: server.url });
    expect((await again.logIn(`MIXED.CASE_${tag.toUpperCase()}`, PASSWORD)).user!.userId).toBe(session.user!.userId);
    expect((await again.accounts.lookupUsers({ usernames: [`Mixed.Case_${tag}`] })).users.map((user) => user.userId)).toEqual([session.user!.userId]);
    await expectChatError(new ChatClient({ baseUrl: server.url }).signUp(stored.toUpperCase(), PASSWORD), Code.AlreadyExists, ErrorReason.USERNAME_TAKEN);

    // GraphQL, as the web client sends it: the name as typed.
    const graphqlName = `Web.User_${tag}`;
    const signUp = "mutation($u: String!, $p: String!) { signUp(input: { username: $u, password: $p }) { session { user { username } } userErrors { code } } }";
    const signedUp = await graphqlData<{ signUp: { session: { user: { username: string } } } }>(server.url, signUp, { u: graphqlName, p: PASSWORD });
    expect(signedUp.signUp.session.user.username).toBe(graphqlName.toLowerCase());
    const taken = await graphqlData<{ signUp: { session: null; userErrors: { code: string }[] } }>(server.url, signUp, { u: graphqlName.toUpperCase(), p: PASSWORD });
    expect(taken.signUp).toEqual({ session: null, userErrors: [{ code: "USERNAME_TAKEN" }] });
  });

  it("still refuses what no case change can fix", async () => {
    await expectChatError(new ChatClient({ baseUrl: server.url }).signUp("Ab", PASSWORD), Code.InvalidArgument, ErrorReason.USERNAME_INVALID);
    await expectChatError(new ChatClient({ baseUrl: server.url }).signUp("Ålice_Ü", PASSWORD), Code.InvalidArgument, ErrorReason.USERNAME_INVALID);
  });
});
