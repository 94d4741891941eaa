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

/** The one user error of a mutation that did not happen: in the payload (`data`), with no top-level error. */
async function expectUserError(promise: Promise<{ errors?: readonly GraphQLErrorShape[]; data?: unknown }>, mutation: string, code: string, field?: string) {
  const result = await promise;
  expect(result.errors, JSON.stringify(result)).toBeUndefined();
  const payload = (result.data as Record<string, { userErrors: { code: string; message: string; field: string | null }[] } & Record<string, unknown>>)[mutation]!;
  expect(payload.userErrors, JSON.stringify(result)).toHaveLength(1);
  const error = payload.userErrors[0]!;
  expect(error.code).toBe(code);
  if (field !== undefined) expect(error.field).toBe(field);
  expect(error.message.length).toBeGreaterThan(10);
  return { error, payload };
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

const NODE_FIELDS = "messageId seq text sentAt senderUserId clientMsgId kind conversationId senderDeviceId";

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
      graphqlHttp(server.url, `mutation Deep($g: ID!) { sendMessage(input: { conversationId: $g, clientMsgId: "deep-0001", text: "x" }) { message { system { kind } } } }`, { g: groupId }, token),
      "QUERY_TOO_DEEP",
      "invalid_argument",
    );
    expect(deep.message).toContain('operation "Deep" nests fields 4 deep; at most 3');
    expect(deep.extensions!.metadata).toEqual({ max: "3", actual: "4" });

    // 25 pages of up to 200 groups, 2 fields each: 25 * (myGroups 1 + nodes 1 + 200 * 2) = 10050 > 10000.
    const lists = Array.from({ length: 25 }, (_, i) => `g${i}: myGroups(first: 200) { nodes { groupId name } }`).join("\n");
    const costly = await expectError(graphqlHttp(server.url, `{ ${lists} }`, {}, carol.session.accessToken), "QUERY_TOO_COSTLY", "invalid_argument");
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

  it("3b. closes a graphql-ws connection without a token (4401) or with a bad one (4403); refuses an unauthenticated query", async () => {
    const anonymous = graphqlWsClient(server.url);
    const forged = graphqlWsClient(server.url, undefined, { connectionParams: { authorization: "Bearer v1.forged.token" } });
    sockets.push(anonymous, forged);

    const closeCode = async (subscription: LiveSubscription<unknown>) => {
      const event = await subscription.nextEvent();
      expect(event.kind, JSON.stringify(event)).toBe("error");
      return (event as { error: { code?: number } }).error.code;
    };
    expect(await closeCode(new LiveSubscription(anonymous, `subscription { messages { kind } }`))).toBe(4401);
    expect(await closeCode(new LiveSubscription(forged, `subscription { typing(conversationId: "${groupId}") { userId } }`))).toBe(4403);

    await expectError(graphqlHttp(server.url, `{ me { deviceId } }`), "TOKEN_MISSING", "unauthenticated");
    await expectError(graphqlHttp(server.url, `{ me { deviceId } }`, {}, "not-a-token"), "TOKEN_INVALID", "unauthenticated");
    // Signing up needs no token: it stays possible over HTTP.
    const signUp = await graphqlHttp<{ signUp: { session: { deviceId: string } } }>(
      server.url,
      `mutation { signUp(input: { username: "anon_${Date.now()}", password: "correct horse battery" }) { session { deviceId } } }`,
    );
    expect(signUp.data?.signUp.session.deviceId).toMatch(/^dev_/);
  });

  it("3c. refuses another user's conversation on every surface of it, and changes nothing", async () => {
    const before = await snapshot();
    const token = carol.session.accessToken;
    const denied = async (query: string, variables: Record<string, unknown> = {}) =>
      expectError(graphqlHttp(server.url, query, { g: groupId, d: directId, me: carol.userId, ...variables }, token), "NOT_A_MEMBER", "permission_denied");

    await denied(`query($g: ID!) { messages(conversationId: $g) { nodes { text } } }`);
    await denied(`query($d: ID!) { messages(conversationId: $d, first: 10) { nodes { text } } }`);
    await denied(`query($g: ID!) { conversation(conversationId: $g) { lastSeq } }`);
    await denied(`query($g: ID!) { group(groupId: $g) { name } }`);
    await denied(`query($g: ID!) { messageReaders(conversationId: $g, seq: "1") { userId } }`);
    // Mutations answer an expected refusal in their payload: the rest of `data` is kept.
    const refused = async (mutation: string, document: string, field?: string) =>
      expectUserError(graphqlHttp(server.url, document, { g: groupId, d: directId, me: carol.userId }, token), mutation, "NOT_A_MEMBER", field);
    const send = await refused("sendMessage", `mutation($g: ID!) { sendMessage(input: { conversationId: $g, clientMsgId: "carol-0001", text: "let me in" }) { duplicate message { seq } userErrors { code message field } } }`, "conversationId");
    expect(send.payload).toMatchObject({ duplicate: null, message: null });
    await refused("markRead", `mutation($d: ID!) { markRead(input: { conversationId: $d, seq: "1" }) { readSeq userErrors { code message field } } }`);
    await refused("markDelivered", `mutation($d: ID!) { markDelivered(input: { conversationId: $d, seq: "1" }) { seq userErrors { code message field } } }`);
    await refused("setTyping", `mutation($g: ID!) { setTyping(input: { conversationId: $g }) { userErrors { code message field } } }`);
    await refused("createUpload", `mutation($g: ID!) { createUpload(input: { conversationId: $g, contentType: "image/png", sizeBytes: "10" }) { upload { uploadUrl } userErrors { code message field } } }`, "conversationId");
    await expectUserError(
      graphqlHttp(server.url, `mutation($g: ID!, $me: ID!) { addGroupMembers(input: { groupId: $g, userIds: [$me] }) { group { groupId } userErrors { code message field } } }`, { g: groupId, me: carol.userId }, token),
      "addGroupMembers",
      "NOT_A_MEMBER",
    );

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
      graphqlHttp(
        server.url,
        `mutation($input: SendMessageInput!) { sendMessage(input: $input) { duplicate userErrors { code message field } } }`,
        { input: { conversationId: groupId, text, clientMsgId } },
        token,
      );

    const tooLong = await expectUserError(send("x".repeat(100_001)), "sendMessage", "TEXT_TOO_LONG", "text");
    expect(tooLong.error.message).toContain("100000 characters");
    await expectUserError(send("   "), "sendMessage", "TEXT_EMPTY", "text");
    await expectUserError(send("hi", "short"), "sendMessage", "CLIENT_MSG_ID_INVALID", "clientMsgId");
    const both = await expectUserError(
      graphqlHttp(server.url, `mutation($g: ID!, $u: ID!) { sendMessage(input: { conversationId: $g, recipientUserId: $u, clientMsgId: "both-0001", text: "hi" }) { userErrors { code message field } } }`, { g: groupId, u: bob.userId }, token),
      "sendMessage",
      "INVALID_ARGUMENT",
      "conversationId",
    );
    expect(both.error.message).toBe("give conversationId or recipientUserId (exactly one)");

    const page = (args: string) => graphqlHttp(server.url, `query($g: ID!) { messages(conversationId: $g, ${args}) { nodes { seq } } }`, { g: groupId }, token);
    // Query errors name the GraphQL arguments, not the proto fields behind them.
    const tooBig = await expectError(page("first: 201"), "PAGE_SIZE_TOO_LARGE", "invalid_argument");
    expect(tooBig.extensions).toMatchObject({ field: "first", metadata: { max: "200" } });
    expect(tooBig.message).toBe("first is at most 200");
    expect((await expectError(page("last: 500"), "PAGE_SIZE_TOO_LARGE", "invalid_argument")).extensions!.field).toBe("last");
    await expectError(page("first: 0"), "INVALID_ARGUMENT", "invalid_argument");
    await expectError(page(`after: "seven"`), "INVALID_CURSOR", "invalid_argument");
    const mixed = await expectError(page(`first: 2, last: 2`), "INVALID_ARGUMENT", "invalid_argument");
    expect(mixed.extensions!.field).toBe("last");
    const inbox = await expectError(graphqlHttp(server.url, `{ inbox(after: "bm90LWEtdG9rZW4") { nodes { readSeq } } }`, {}, token), "INVALID_CURSOR", "invalid_argument");
    expect(inbox.extensions!.field).toBe("after");
    expect(inbox.message).not.toMatch(/page_token|pageToken/);
    await expectError(graphqlHttp(server.url, `mutation($s: UInt64!) { markRead(input: { conversationId: "${groupId}", seq: $s }) { readSeq } }`, { s: "-1" }, token), "BAD_USER_INPUT", "invalid_argument");
    await expectUserError(
      graphqlHttp(server.url, `mutation { markRead(input: { conversationId: "${groupId}", seq: "99" }) { readSeq userErrors { code message field } } }`, {}, token),
      "markRead",
      "INVALID_CURSOR",
      "seq",
    );
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
