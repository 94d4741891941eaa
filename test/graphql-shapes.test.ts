import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema, type IntrospectionQuery } from "graphql";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphqlData, graphqlHttp, graphqlWsClient, LiveSubscription } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD, uniqueName } from "./support/users.js";
import { waitFor } from "./support/wait.js";

interface Person {
  readonly userId: string;
  readonly token: string;
}

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { duplicate message { seq attachments { attachmentId contentType sizeBytes fileName } } userErrors { code message field } } }`;

/** What an integrator meets first: partial data, user errors, connections, Node ids, cost, rate limits, and the parts of the API GraphQL had not offered. */
describe("GraphQL as an integrator uses it", () => {
  let server: ServerProcess;
  const sockets: Client[] = [];
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let directId: string;
  const groupIds: string[] = [];

  const signUp = async (prefix: string): Promise<Person> => {
    const data = await graphqlData<{ signUp: { session: { accessToken: string; user: { userId: string } } } }>(
      server.url,
      `mutation($input: SignUpInput!) { signUp(input: $input) { session { accessToken user { userId } } userErrors { code } } }`,
      { input: { username: uniqueName(prefix), password: PASSWORD } },
    );
    return { userId: data.signUp.session.user.userId, token: data.signUp.session.accessToken };
  };
  const send = (person: Person, input: Record<string, unknown>) =>
    graphqlData<{ sendMessage: { duplicate: boolean | null; message: { seq: string; attachments: unknown[] } | null; userErrors: { code: string; field: string | null }[] } }>(
      server.url,
      SEND,
      { input: { clientMsgId: `msg-${crypto.randomUUID()}`, ...input } },
      person.token,
    );

  beforeAll(async () => {
    // A low burst for sends, so a rate limit is reached within the test (limits are per user).
    server = await startServer({ env: { CHAT_SEND_RATE: "1", CHAT_SEND_BURST: "12", CHAT_UPLOAD_CONTENT_TYPES: "image/*,text/plain" } });
    [alice, bob, carol] = await Promise.all([signUp("alice"), signUp("bob"), signUp("carol")]);
    directId = (await graphqlData<{ openDirectConversation: { conversation: { conversationId: string } } }>(
      server.url,
      `mutation($u: ID!) { openDirectConversation(input: { userId: $u }) { conversation { conversationId } } }`,
      { u: bob.userId },
      alice.token,
    )).openDirectConversation.conversation.conversationId;
    for (let i = 1; i <= 5; i++) {
      const created = await graphqlData<{ createGroup: { group: { groupId: string } } }>(
        server.url,
        `mutation($input: CreateGroupInput!) { createGroup(input: $input) { group { groupId } } }`,
        { input: { name: `group ${i}`, memberUserIds: [bob.userId, carol.userId] } },
        alice.token,
      );
      groupIds.push(created.createGroup.group.groupId);
    }
  });
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  it("answers introspection with exactly the checked-in graphql/schema.graphql, descriptions and @specifiedBy included", async () => {
    const result = await graphqlData<IntrospectionQuery>(server.url, getIntrospectionQuery({ descriptions: true, specifiedByUrl: true }), {}, alice.token);
    const committed = readFileSync(resolve(import.meta.dirname, "..", "graphql", "schema.graphql"), "utf8");
    expect(printSchema(buildClientSchema(result))).toBe(printSchema(buildSchema(committed)));
  });

  it("keeps the rest of the data when a lookup misses: null at its path, one error there", async () => {
    const result = await graphqlHttp<{ me: { user: { userId: string } }; conversation: null; group: null; node: null }>(
      server.url,
      `{ me { user { userId } } conversation(conversationId: "nope") { title } group(groupId: "g_nope") { name } node(id: "bm90LWEtbm9kZQ") { id } }`,
      {},
      alice.token,
    );
    expect(result.status).toBe(200);
    expect(result.data).toEqual({ me: { user: { userId: alice.userId } }, conversation: null, group: null, node: null });
    const errors = result.errors!.map((error) => ({ path: error.path, code: error.extensions!.code })).sort((a, b) => String(a.path).localeCompare(String(b.path)));
    expect(errors).toEqual([
      { path: ["conversation"], code: "NOT_A_MEMBER" },
      { path: ["group"], code: "NOT_A_MEMBER" },
      { path: ["node"], code: "INVALID_ARGUMENT" },
    ]);
  });

  it("answers expected failures of a mutation in userErrors, with GraphQL's field names", async () => {
    const taken = await graphqlData<{ signUp: { session: null; userErrors: { code: string; field: string | null; message: string }[] } }>(
      server.url,
      `mutation($input: SignUpInput!) { signUp(input: $input) { session { accessToken } userErrors { code field message } } }`,
      { input: { username: "ab", password: PASSWORD } },
    );
    expect(taken.signUp).toMatchObject({ session: null, userErrors: [{ code: "USERNAME_INVALID", field: "username" }] });
    const wrong = await graphqlData<{ logIn: { session: null; userErrors: { code: string }[] } }>(
      server.url,
      `mutation { logIn(input: { username: "nobody_here", password: "wrong password" }) { session { accessToken } userErrors { code } } }`,
    );
    expect(wrong.logIn).toEqual({ session: null, userErrors: [{ code: "BAD_CREDENTIALS" }] });
    const neither = await send(alice, { text: "to nobody" });
    expect(neither.sendMessage).toEqual({ duplicate: null, message: null, userErrors: [{ code: "INVALID_ARGUMENT", field: "conversationId", message: "give conversationId or recipientUserId (exactly one)" }] });
    // Two mutations in one operation: one fails, the other's result stands.
    const both = await graphqlData<{ ok: { readSeq: string | null; userErrors: unknown[] }; bad: { readSeq: string | null; userErrors: { code: string }[] } }>(
      server.url,
      `mutation($c: ID!) { ok: setTyping(input: { conversationId: $c }) { conversationId userErrors { code } } bad: markRead(input: { conversationId: $c, seq: "999" }) { readSeq userErrors { code } } }`,
      { c: directId },
      alice.token,
    );
    expect(both).toMatchObject({ ok: { conversationId: directId, userErrors: [] }, bad: { readSeq: null, userErrors: [{ code: "INVALID_CURSOR" }] } });
  });

  it("pages groups, members, users and the inbox as Relay connections, both ways where the list is whole", async () => {
    type Conn = { totalCount: number; edges: { cursor: string; node: { groupId: string } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string; endCursor: string } };
    const groups = (args: { first?: number; after?: string; last?: number; before?: string }) =>
      graphqlData<{ myGroups: Conn }>(
        server.url,
        `query($first: Int, $after: String, $last: Int, $before: String) {
          myGroups(first: $first, after: $after, last: $last, before: $before) { totalCount edges { cursor node { groupId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
        }`,
        args,
        bob.token,
      ).then((data) => data.myGroups);
    const first = await groups({ first: 2 });
    expect(first.totalCount).toBe(5);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const second = await groups({ first: 2, after: first.pageInfo.endCursor });
    const third = await groups({ first: 2, after: second.pageInfo.endCursor });
    expect(third.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const forward = [...first.edges, ...second.edges, ...third.edges].map((edge) => edge.node.groupId);
    expect([...forward].sort()).toEqual([...groupIds].sort());
    // Backward from the end gives the same order, page by page.
    const last = await groups({ last: 3 });
    const before = await groups({ last: 3, before: last.pageInfo.startCursor });
    expect([...before.edges, ...last.edges].map((edge) => edge.node.groupId)).toEqual(forward);
    expect(before.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: true });

    const members = await graphqlData<{ group: { members: { totalCount: number; nodes: { userId: string; role: string }[]; pageInfo: { hasNextPage: boolean } } } }>(
      server.url,
      `query($g: ID!) { group(groupId: $g) { members(first: 2) { totalCount nodes { userId role } pageInfo { hasNextPage } } } }`,
      { g: groupIds[0] },
      bob.token,
    );
    expect(members.group.members).toEqual({ totalCount: 3, nodes: [{ userId: alice.userId, role: "OWNER" }, { userId: bob.userId, role: "MEMBER" }], pageInfo: { hasNextPage: true } });

    const users = (after?: string) =>
      graphqlData<{ users: { totalCount: number; nodes: { userId: string }[]; pageInfo: { endCursor: string; hasNextPage: boolean } } }>(
        server.url,
        `query($ids: [ID!], $after: String) { users(userIds: $ids, first: 1, after: $after) { totalCount nodes { userId } pageInfo { endCursor hasNextPage } } }`,
        { ids: [carol.userId, alice.userId, "u_unknown"], after },
        bob.token,
      ).then((data) => data.users);
    const one = await users();
    const two = await users(one.pageInfo.endCursor);
    expect([one.totalCount, one.pageInfo.hasNextPage, two.pageInfo.hasNextPage]).toEqual([2, true, false]);
    expect([...one.nodes, ...two.nodes].map((user) => user.userId).sort()).toEqual([alice.userId, carol.userId].sort());

    // The inbox: every edge's cursor continues after that edge.
    const inbox = (after?: string) =>
      graphqlData<{ inbox: { edges: { cursor: string; node: { conversation: { conversationId: string } } }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string } } }>(
        server.url,
        `query($after: String) { inbox(first: 2, after: $after) { edges { cursor node { conversation { conversationId } } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`,
        { after },
        bob.token,
      ).then((data) => data.inbox);
    const page1 = await inbox();
    expect(page1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false, endCursor: page1.edges[1]!.cursor });
    const fromFirst = await inbox(page1.edges[0]!.cursor);
    expect(fromFirst.edges[0]!.node.conversation.conversationId).toBe(page1.edges[1]!.node.conversation.conversationId);
    expect(fromFirst.pageInfo.hasPreviousPage).toBe(true);
  });

  it("refetches users, conversations, groups and messages by their global id with node(id:)", async () => {
    await send(alice, { conversationId: groupIds[0], text: "find me again" });
    const data = await graphqlData<{ me: { user: { id: string } }; group: { id: string; conversation: { id: string } }; messages: { nodes: { id: string; text: string }[] } }>(
      server.url,
      `query($g: ID!) { me { user { id } } group(groupId: $g) { id conversation { id } } messages(conversationId: $g, last: 1) { nodes { id text } } }`,
      { g: groupIds[0] },
      bob.token,
    );
    const ids = [data.me.user.id, data.group.id, data.group.conversation.id, data.messages.nodes[0]!.id];
    expect(new Set(ids).size).toBe(4);
    const again = await graphqlData<Record<string, { __typename: string; id: string }>>(
      server.url,
      `query($a: ID!, $b: ID!, $c: ID!, $d: ID!) {
        a: node(id: $a) { __typename id ... on User { userId } }
        b: node(id: $b) { __typename id ... on Group { name } }
        c: node(id: $c) { __typename id ... on Conversation { title } }
        d: node(id: $d) { __typename id ... on Message { text } }
      }`,
      { a: ids[0], b: ids[1], c: ids[2], d: ids[3] },
      bob.token,
    );
    expect(again).toEqual({
      a: { __typename: "User", id: ids[0], userId: bob.userId },
      b: { __typename: "Group", id: ids[1], name: "group 1" },
      c: { __typename: "Conversation", id: ids[2], title: "group 1" },
      d: { __typename: "Message", id: ids[3], text: "find me again" },
    });
    // A global id is no key to what you cannot see.
    const outsider = await signUp("dave");
    const hidden = await graphqlHttp<{ node: null }>(server.url, `query($d: ID!) { node(id: $d) { id } }`, { d: ids[3] }, outsider.token);
    expect(hidden.data).toEqual({ node: null });
    expect(hidden.errors![0]!.extensions!.code).toBe("NOT_A_MEMBER");
  });

  it("reports each operation's cost and the budget left in extensions.cost, refused ones too", async () => {
    const cheap = await graphqlHttp(server.url, `{ me { deviceId } }`, {}, alice.token);
    expect((cheap as { extensions?: unknown }).extensions).toEqual({ cost: { requested: 2, limit: 10000, remaining: 9998 } });
    const page = await graphqlHttp(server.url, `query($g: ID!) { messages(conversationId: $g, first: 100) { edges { node { seq text } } } }`, { g: groupIds[0] }, alice.token);
    expect((page as { extensions?: unknown }).extensions).toEqual({ cost: { requested: 302, limit: 10000, remaining: 9698 } });
    const mutation = await graphqlHttp(server.url, `mutation($c: ID!) { setTyping(input: { conversationId: $c }) { conversationId } }`, { c: directId }, alice.token);
    expect((mutation as { extensions?: { cost: { requested: number } } }).extensions!.cost.requested).toBe(2);
    const lists = Array.from({ length: 25 }, (_, i) => `g${i}: myGroups(first: 200) { nodes { groupId name } }`).join(" ");
    const refused = await graphqlHttp(server.url, `{ ${lists} }`, {}, alice.token);
    expect(refused.errors![0]!.extensions!.code).toBe("QUERY_TOO_COSTLY");
    expect((refused as { extensions?: unknown }).extensions).toEqual({ cost: { requested: 10050, limit: 10000, remaining: 0 } });
  });

  it("answers a rate-limited request with HTTP 429 and Retry-After", async () => {
    const flooder = await signUp("flooder");
    const conversationId = (await graphqlData<{ openDirectConversation: { conversation: { conversationId: string } } }>(
      server.url,
      `mutation($u: ID!) { openDirectConversation(input: { userId: $u }) { conversation { conversationId } } }`,
      { u: alice.userId },
      flooder.token,
    )).openDirectConversation.conversation.conversationId;
    let limited: Response | undefined;
    for (let i = 0; i < 20 && !limited; i++) {
      const response = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/graphql-response+json", authorization: `Bearer ${flooder.token}` },
        body: JSON.stringify({ query: SEND, variables: { input: { conversationId, clientMsgId: `flood-${i}-000`, text: `flood ${i}` } } }),
      });
      if (response.status !== 200) limited = response;
    }
    expect(limited?.status, "the burst (12) was never exceeded").toBe(429);
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const body = (await limited!.json()) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]!.extensions).toMatchObject({ code: "RATE_LIMITED", grpcCode: "resource_exhausted", metadata: { retryAfterMs: expect.any(String) } });
    expect(body.errors[0]!.extensions.http).toBeUndefined();
  });

  it("sends files: createUpload, PUT, sendMessage with attachmentIds, Message.attachments, createDownload", async () => {
    const bytes = new TextEncoder().encode("hello, file");
    const upload = await graphqlData<{ createUpload: { upload: { attachmentId: string; uploadUrl: string; headers: { name: string; value: string }[] } } }>(
      server.url,
      `mutation($input: CreateUploadInput!) { createUpload(input: $input) { upload { attachmentId uploadUrl headers { name value } } userErrors { code } } }`,
      { input: { conversationId: directId, contentType: "text/plain", sizeBytes: String(bytes.length), fileName: "note.txt" } },
      alice.token,
    );
    const ticket = upload.createUpload.upload;
    const put = await fetch(ticket.uploadUrl, { method: "PUT", headers: Object.fromEntries(ticket.headers.map((h) => [h.name, h.value])), body: bytes });
    expect(put.status).toBeLessThan(300);
    const sent = await send(alice, { conversationId: directId, text: "", attachmentIds: [ticket.attachmentId] });
    expect(sent.sendMessage.message!.attachments).toEqual([{ attachmentId: ticket.attachmentId, contentType: "text/plain", sizeBytes: String(bytes.length), fileName: "note.txt" }]);
    const download = await graphqlData<{ createDownload: { download: { downloadUrl: string; fileName: string } } }>(
      server.url,
      `mutation($a: ID!) { createDownload(input: { attachmentId: $a }) { download { downloadUrl fileName } } }`,
      { a: ticket.attachmentId },
      bob.token,
    );
    expect(download.createDownload.download.fileName).toBe("note.txt");
    expect(await (await fetch(download.createDownload.download.downloadUrl)).text()).toBe("hello, file");
    const tooBig = await graphqlData<{ createUpload: { upload: null; userErrors: { code: string; field: string }[] } }>(
      server.url,
      `mutation($c: ID!) { createUpload(input: { conversationId: $c, contentType: "application/x-msdownload", sizeBytes: "10" }) { upload { uploadUrl } userErrors { code field } } }`,
      { c: directId },
      alice.token,
    );
    expect(tooBig.createUpload).toEqual({ upload: null, userErrors: [{ code: "CONTENT_TYPE_NOT_ALLOWED", field: "contentType" }] });
  });

  it("sets push targets and preferences: registerPushTarget, setConversationMuted, setPushPreviews, pushSettings, unregisterPushTarget", async () => {
    const ok = { ok: true, userErrors: [] };
    const mutate = (document: string, variables: Record<string, unknown> = {}) => graphqlData<Record<string, unknown>>(server.url, document, variables, carol.token);
    expect((await mutate(`mutation { registerPushTarget(input: { webhook: { url: "https://push.example/carol" } }) { ok userErrors { code } } }`)).registerPushTarget).toEqual(ok);
    expect((await mutate(`mutation($c: ID!) { setConversationMuted(input: { conversationId: $c, muted: true }) { ok userErrors { code } } }`, { c: groupIds[1] })).setConversationMuted).toEqual(ok);
    expect((await mutate(`mutation { setPushPreviews(input: { enabled: true }) { ok userErrors { code } } }`)).setPushPreviews).toEqual(ok);
    const settings = await mutate(`{ pushSettings { vapidPublicKey previews mutedConversationIds } }`);
    expect(settings.pushSettings).toMatchObject({ previews: true, mutedConversationIds: [groupIds[1]], vapidPublicKey: expect.stringMatching(/^[A-Za-z0-9_-]{80,}$/) });
    const neither = await mutate(`mutation { registerPushTarget(input: {}) { ok userErrors { code field } } }`);
    expect(neither.registerPushTarget).toEqual({ ok: null, userErrors: [{ code: "PUSH_TARGET_INVALID", field: "webhook" }] });
    expect((await mutate(`mutation { unregisterPushTarget { ok userErrors { code } } }`)).unregisterPushTarget).toEqual(ok);
  });

  it("reports DELIVERED from a GraphQL device (markDelivered), and tells of conversations joined (conversationChanges)", async () => {
    const aliceWs = graphqlWsClient(server.url, alice.token);
    const carolWs = graphqlWsClient(server.url, carol.token);
    sockets.push(aliceWs, carolWs);
    const receipts = new LiveSubscription<{ receipts: { userId: string; deviceId: string | null; kind: string; seq: string } }>(
      aliceWs,
      `subscription($c: ID) { receipts(conversationId: $c) { userId deviceId kind seq } }`,
      { c: directId },
    );
    const changes = new LiveSubscription<{ conversationChanges: { change: string; conversation: { conversationId: string; title: string } } }>(
      carolWs,
      `subscription { conversationChanges { change conversation { conversationId title } } }`,
    );
    // Both subscriptions are device sessions: wait until each gateway session is up (presence says so).
    const online = async (person: Person) =>
      (await graphqlData<{ presence: { status: string }[] }>(server.url, `query($u: [ID!]!) { presence(userIds: $u) { status } }`, { u: [person.userId] }, bob.token)).presence[0]!.status === "ONLINE";
    for (const person of [alice, carol]) await waitFor(() => online(person), 10_000, "a subscription to make its user online");
    const { seq } = (await send(alice, { conversationId: directId, text: "did you get it?" })).sendMessage.message!;
    const delivered = await graphqlData<{ markDelivered: { seq: string; userErrors: unknown[] } }>(
      server.url,
      `mutation($c: ID!, $s: UInt64!) { markDelivered(input: { conversationId: $c, seq: $s }) { seq userErrors { code } } }`,
      { c: directId, s: seq },
      bob.token,
    );
    expect(delivered.markDelivered).toEqual({ seq, userErrors: [] });
    expect((await receipts.next(10_000)).receipts).toMatchObject({ userId: bob.userId, kind: "DELIVERED", seq, deviceId: expect.stringMatching(/^dev_/) });

    const joined = await graphqlData<{ createGroup: { group: { groupId: string } } }>(
      server.url,
      `mutation($m: [ID!]) { createGroup(input: { name: "late joiners", memberUserIds: $m }) { group { groupId } } }`,
      { m: [carol.userId] },
      bob.token,
    );
    expect((await changes.next(10_000)).conversationChanges).toEqual({ change: "JOINED", conversation: { conversationId: joined.createGroup.group.groupId, title: "late joiners" } });
    receipts.close();
    changes.close();
  });
});
