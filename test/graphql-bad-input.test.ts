import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatClient } from "../clients/sdk/index.js";
import { graphqlData, graphqlHttp, graphqlWsClient, LiveSubscription, type GraphQLErrorShape } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

/** The one error of a failed operation (over HTTP). */
async function expectError(promise: Promise<{ errors?: readonly GraphQLErrorShape[]; data?: unknown }>, code: string, grpcCode: string): Promise<GraphQLErrorShape> {
  const result = await promise;
  expect(result.errors, JSON.stringify(result)).toHaveLength(1);
  const error = result.errors![0]!;
  expect(error.extensions).toMatchObject({ code, grpcCode });
  expect(error.message.length).toBeGreaterThan(10);
  return error;
}

/**
 * The error a subscription ends with: a `next` carrying `errors` (then `complete`), or an `error`
 * message. A refusal comes at once; silence means the server accepted the subscription, and the
 * failure says so within a few seconds.
 */
async function subscriptionError(subscription: LiveSubscription<unknown>, what: string): Promise<GraphQLErrorShape> {
  const event = await subscription.nextEvent(5_000).catch(() => {
    throw new Error(`no error within 5 s for ${what}: the subscription stays open and silent, so the server accepted it`);
  });
  if (event.kind === "next" && event.result.errors?.length) {
    expect((await subscription.nextEvent()).kind).toBe("complete");
    return event.result.errors[0]!;
  }
  if (event.kind === "error" && Array.isArray(event.error)) return event.error[0] as GraphQLErrorShape;
  throw new Error(`expected an error, got ${JSON.stringify(event)}`);
}

const NODE_FIELDS = "id seq text sentAt senderUserId clientMsgId kind conversationId senderDeviceId";

describe("GraphQL bad input: clear errors, nothing changed", () => {
  let server: ServerProcess;
  const sockets: Client[] = [];
  let alice: ChatClient;
  let bob: ChatClient;
  let carol: ChatClient;
  let groupId: string;
  let directId: string;

  /** What must not change: the group's head and members, the direct conversation's head. */
  const snapshot = async () => {
    const { group } = await alice.groups.getGroup({ groupId });
    const direct = await alice.messaging.getConversation({ conversationId: directId });
    const myGroups = await carol.groups.listMyGroups({});
    return { groupSeq: group!.conversation!.lastSeq, members: group!.members.map((m) => m.userId), directSeq: direct.conversation!.lastSeq, carolsGroups: myGroups.groups.length };
  };

  beforeAll(async () => {
    // The schema has no cycles, so no query of it nests deeper than 5 and the default depth limit (10)
    // cannot be crossed; this server allows 3 to show the limit at work.
    server = await startServer({ env: { CHAT_GRAPHQL_MAX_DEPTH: "3" } });
    [alice, bob, carol] = await Promise.all([newUser(server.url, "alice"), newUser(server.url, "bob"), newUser(server.url, "carol")]);
    groupId = (await alice.groups.createGroup({ name: "private", memberUserIds: [bob.userId] })).group!.groupId;
    await alice.send({ conversationId: groupId }, "for members only");
    directId = (await alice.send({ recipientUserId: bob.userId }, "just us")).message!.conversationId;
  });
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("3a. refuses an operation over the depth or cost limit before running any of it", async () => {
    const before = await snapshot();
    const token = alice.session.accessToken;

    const deep = await expectError(
      graphqlHttp(server.url, `mutation Deep($g: ID!) { sendMessage(conversationId: $g, clientMsgId: "deep-0001", text: "x") { message { system { kind } } } }`, { g: groupId }, token),
      "QUERY_TOO_DEEP",
      "invalid_argument",
    );
    expect(deep.message).toContain('operation "Deep" nests fields 4 deep; at most 3');
    expect(deep.extensions!.metadata).toEqual({ max: "3", actual: "4" });

    // 25 groups of up to 100 members, 4 fields each: 25 * (createGroup 1 + members 1 + 100 * 4) = 10050 > 10000.
    const creates = Array.from({ length: 25 }, (_, i) => `g${i}: createGroup(name: "costly ${i}") { members { userId role joinedSeq joinedAt } }`).join("\n");
    const costly = await expectError(graphqlHttp(server.url, `mutation { ${creates} }`, {}, carol.session.accessToken), "QUERY_TOO_COSTLY", "invalid_argument");
    expect(costly.extensions!.metadata).toEqual({ max: "10000", actual: "10050" });

    // Page sizes in variables count with their values: six pages of 3 are fine, six of 200 are not.
    const pages = `query Pages($g: ID!, $n: Int) { ${Array.from({ length: 6 }, (_, i) => `p${i}: messages(conversationId: $g, last: $n) { nodes { ${NODE_FIELDS} } }`).join(" ")} }`;
    const small = await graphqlData<Record<string, { nodes: unknown[] }>>(server.url, pages, { g: groupId, n: 3 }, token);
    expect(small.p0!.nodes).toHaveLength(2);
    await expectError(graphqlHttp(server.url, pages, { g: groupId, n: 200 }, token), "QUERY_TOO_COSTLY", "invalid_argument");

    // The same limits apply over WebSocket.
    const socket = graphqlWsClient(server.url, token);
    sockets.push(socket);
    const deepFeed = new LiveSubscription(socket, `subscription { messages { message { system { kind } } } }`);
    expect((await subscriptionError(deepFeed, "a subscription over the depth limit")).extensions).toMatchObject({ code: "QUERY_TOO_DEEP", grpcCode: "invalid_argument" });

    expect(await snapshot()).toEqual(before);
  });

  it("3b. refuses an unauthenticated subscription (and query) with TOKEN_MISSING or TOKEN_INVALID", async () => {
    const anonymous = graphqlWsClient(server.url);
    const forged = graphqlWsClient(server.url, undefined, { connectionParams: { authorization: "Bearer v1.forged.token" } });
    sockets.push(anonymous, forged);

    const missing = await subscriptionError(new LiveSubscription(anonymous, `subscription { messages { kind } }`), "a subscription without a token");
    expect(missing).toMatchObject({ path: ["messages"], extensions: { code: "TOKEN_MISSING", grpcCode: "unauthenticated" } });
    expect(missing.message).toContain("access token");
    const invalid = await subscriptionError(new LiveSubscription(forged, `subscription { typing(conversationId: "${groupId}") { userId } }`), "a subscription with a forged token");
    expect(invalid.extensions).toMatchObject({ code: "TOKEN_INVALID", grpcCode: "unauthenticated" });

    await expectError(graphqlHttp(server.url, `{ me { deviceId } }`), "TOKEN_MISSING", "unauthenticated");
    await expectError(graphqlHttp(server.url, `{ me { deviceId } }`, {}, "not-a-token"), "TOKEN_INVALID", "unauthenticated");
    // Signing up needs no token; the connection without one can still do that.
    const signUp = await graphqlHttp<{ signUp: { user: { username: string } } }>(server.url, `mutation { signUp(username: "anon_${Date.now()}", password: "correct horse battery") { user { username } } }`);
    expect(signUp.data?.signUp.user.username).toMatch(/^anon_/);
  });

  it("3c. refuses another user's conversation on every surface of it, and changes nothing", async () => {
    const before = await snapshot();
    const token = carol.session.accessToken;
    const denied = async (query: string, variables: Record<string, unknown> = {}) =>
      expectError(graphqlHttp(server.url, query, { g: groupId, d: directId, me: carol.userId, ...variables }, token), "NOT_A_MEMBER", "permission_denied");

    await denied(`query($g: ID!) { messages(conversationId: $g) { nodes { text } } }`);
    await denied(`query($d: ID!) { messages(conversationId: $d, first: 10) { nodes { text } } }`);
    await denied(`query($g: ID!) { conversation(id: $g) { lastSeq } }`);
    await denied(`query($g: ID!) { group(id: $g) { members { userId } } }`);
    await denied(`query($g: ID!) { messageReaders(conversationId: $g, seq: "1") { userId } }`);
    const send = await denied(`mutation($g: ID!) { sendMessage(conversationId: $g, clientMsgId: "carol-0001", text: "let me in") { duplicate } }`);
    expect(send.extensions!.field).toBe("conversationId");
    await denied(`mutation($d: ID!) { markRead(conversationId: $d, seq: "1") { readSeq } }`);
    await denied(`mutation($g: ID!) { setTyping(conversationId: $g) }`);
    await denied(`mutation($g: ID!, $me: ID!) { addGroupMembers(groupId: $g, userIds: [$me]) { id } }`);

    const socket = graphqlWsClient(server.url, token);
    sockets.push(socket);
    for (const query of [`subscription { typing(conversationId: "${groupId}") { userId } }`, `subscription { receipts(conversationId: "${directId}") { seq } }`]) {
      expect((await subscriptionError(new LiveSubscription(socket, query), `a non-member's ${query}`)).extensions).toMatchObject({ code: "NOT_A_MEMBER", grpcCode: "permission_denied" });
    }

    expect(await snapshot()).toEqual(before);
  });

  it("3d. refuses an over-long text, and other malformed input, storing nothing", async () => {
    const before = await snapshot();
    const token = alice.session.accessToken;
    const send = (text: string, clientMsgId = "long-0001") =>
      graphqlHttp(server.url, `mutation($g: ID!, $t: String!, $id: String!) { sendMessage(conversationId: $g, clientMsgId: $id, text: $t) { duplicate } }`, { g: groupId, t: text, id: clientMsgId }, token);

    const tooLong = await expectError(send("x".repeat(100_001)), "TEXT_TOO_LONG", "invalid_argument");
    expect(tooLong.extensions).toMatchObject({ field: "text", metadata: { max: "100000" } });
    expect(tooLong.message).toContain("100000 characters");
    await expectError(send("   "), "TEXT_EMPTY", "invalid_argument");
    await expectError(send("hi", "short"), "CLIENT_MSG_ID_INVALID", "invalid_argument");
    await expectError(
      graphqlHttp(server.url, `mutation($g: ID!, $u: ID!) { sendMessage(conversationId: $g, recipientUserId: $u, clientMsgId: "both-0001", text: "hi") { duplicate } }`, { g: groupId, u: bob.userId }, token),
      "INVALID_ARGUMENT",
      "invalid_argument",
    );

    const page = (args: string) => graphqlHttp(server.url, `query($g: ID!) { messages(conversationId: $g, ${args}) { nodes { seq } } }`, { g: groupId }, token);
    const tooBig = await expectError(page("first: 201"), "PAGE_SIZE_TOO_LARGE", "invalid_argument");
    expect(tooBig.extensions!.metadata).toEqual({ max: "200" });
    await expectError(page("first: 0"), "INVALID_ARGUMENT", "invalid_argument");
    await expectError(page(`after: "seven"`), "INVALID_CURSOR", "invalid_argument");
    await expectError(page(`first: 2, before: "2"`), "INVALID_CURSOR", "invalid_argument");
    await expectError(graphqlHttp(server.url, `mutation($s: UInt64!) { markRead(conversationId: "${groupId}", seq: $s) { readSeq } }`, { s: "-1" }, token), "BAD_USER_INPUT", "invalid_argument");
    await expectError(graphqlHttp(server.url, `mutation { markRead(conversationId: "${groupId}", seq: "99") { readSeq } }`, {}, token), "INVALID_CURSOR", "invalid_argument");
    await expectError(graphqlHttp(server.url, `{ me { nope } }`, {}, token), "GRAPHQL_VALIDATION_FAILED", "invalid_argument");
    await expectError(graphqlHttp(server.url, `{ me { `, {}, token), "GRAPHQL_PARSE_FAILED", "invalid_argument");

    expect(await snapshot()).toEqual(before);
  });

  it("introspection and GraphiQL are on by default and can be switched off", async () => {
    const introspect = (url: string) => graphqlHttp<{ __schema: { queryType: { name: string } } }>(url, `{ __schema { queryType { name } } }`);
    const graphiql = (url: string) => fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
    expect((await introspect(server.url)).data?.__schema.queryType.name).toBe("Query");
    const page = await graphiql(server.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("GraphiQL");

    const closed = await startServer({ env: { CHAT_GRAPHQL_INTROSPECTION: "off" } });
    try {
      const refused = await introspect(closed.url);
      expect(refused.data).toBeUndefined();
      expect(refused.errors![0]).toMatchObject({ extensions: { code: "GRAPHQL_VALIDATION_FAILED", grpcCode: "invalid_argument" } });
      expect(refused.errors![0]!.message).toContain("introspection has been disabled");
      const noPage = await graphiql(closed.url);
      expect(await noPage.text()).not.toContain("GraphiQL");
      // __typename is not introspection of the schema; ordinary queries still work.
      expect((await graphqlHttp(closed.url, `{ __typename }`)).data).toEqual({ __typename: "Query" });
    } finally {
      await closed.kill("SIGTERM");
      removeDir(closed.dataDir);
    }
  });

  it("a bad GraphQL setting stops the gateway with a message naming it", async () => {
    await expect(startServer({ env: { CHAT_GRAPHQL_MAX_DEPTH: "deep" } })).rejects.toThrow(/CHAT_GRAPHQL_MAX_DEPTH="deep" is not valid: expected an integer 2-100/);
  });
});
