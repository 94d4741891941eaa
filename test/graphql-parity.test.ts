import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupRole } from "../gen/chat/v1/groups_pb.js";
import { MessageKind, SystemEventKind, type Message } from "../gen/chat/v1/types_pb.js";
import { ChatClient } from "../clients/sdk/index.js";
import { graphqlData } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { PASSWORD } from "./support/users.js";

/** A message as both surfaces can state it: enums by name, seqs as numbers, times as ISO strings. */
interface PlainMessage {
  id: string;
  seq: number;
  senderUserId: string;
  kind: string;
  text: string;
  clientMsgId: string;
  sentAt: string;
  system: { kind: string; actorUserId: string; targetUserIds: string[]; title: string } | null;
}

interface PlainGroup {
  id: string;
  name: string;
  members: { userId: string; role: string; joinedSeq: number; joinedAt: string }[];
  conversation: { id: string; kind: string; lastSeq: number; title: string };
}

interface Page {
  messages: PlainMessage[];
  hasMore: boolean;
}

/** One surface (GraphQL or Connect) driven by the same scenario. */
interface Surface {
  signUp(username: string): Promise<{ userId: string; actor: unknown }>;
  createGroup(actor: unknown, name: string, memberUserIds: string[]): Promise<PlainGroup>;
  send(actor: unknown, conversationId: string, text: string, clientMsgId: string): Promise<{ duplicate: boolean; message: PlainMessage }>;
  pageForward(actor: unknown, conversationId: string, first: number, after?: number): Promise<Page>;
  pageBackward(actor: unknown, conversationId: string, last: number, before?: number): Promise<Page>;
  markRead(actor: unknown, conversationId: string, seq: number): Promise<number>;
  inboxEntry(actor: unknown, conversationId: string): Promise<{ unreadCount: number; readSeq: number; lastMessage: { seq: number; text: string } | null }>;
  readers(actor: unknown, conversationId: string, seq: number): Promise<string[]>;
  group(actor: unknown, groupId: string): Promise<PlainGroup>;
}

const iso = (timestamp: Timestamp | undefined) => (timestamp ? timestampDate(timestamp).toISOString() : "");

function plainConnectMessage(message: Message): PlainMessage {
  return {
    id: message.messageId,
    seq: Number(message.seq),
    senderUserId: message.senderUserId,
    kind: MessageKind[message.kind],
    text: message.text,
    clientMsgId: message.clientMsgId,
    sentAt: iso(message.sentAt),
    system: message.system
      ? { kind: SystemEventKind[message.system.kind], actorUserId: message.system.actorUserId, targetUserIds: message.system.targetUserIds, title: message.system.title }
      : null,
  };
}

function connectSurface(baseUrl: string): Surface {
  const as = (actor: unknown) => actor as ChatClient;
  const plainGroup = (group: Awaited<ReturnType<ChatClient["groups"]["getGroup"]>>["group"]): PlainGroup => ({
    id: group!.groupId,
    name: group!.name,
    members: group!.members.map((member) => ({ userId: member.userId, role: GroupRole[member.role], joinedSeq: Number(member.joinedSeq), joinedAt: iso(member.joinedAt) })),
    conversation: { id: group!.conversation!.conversationId, kind: group!.conversation!.kind === 2 ? "GROUP" : "DIRECT", lastSeq: Number(group!.conversation!.lastSeq), title: group!.conversation!.title },
  });
  return {
    async signUp(username) {
      const client = new ChatClient({ baseUrl });
      await client.signUp(username, PASSWORD);
      return { userId: client.userId, actor: client };
    },
    async createGroup(actor, name, memberUserIds) {
      return plainGroup((await as(actor).groups.createGroup({ name, memberUserIds })).group);
    },
    async send(actor, conversationId, text, clientMsgId) {
      const result = await as(actor).send({ conversationId }, text, clientMsgId);
      return { duplicate: result.duplicate, message: plainConnectMessage(result.message!) };
    },
    async pageForward(actor, conversationId, first, after) {
      const page = await as(actor).history(conversationId, { afterSeq: BigInt(after ?? 0), limit: first });
      return { messages: page.messages.map(plainConnectMessage), hasMore: page.hasMore };
    },
    async pageBackward(actor, conversationId, last, before) {
      const page = await as(actor).history(conversationId, { beforeSeq: before === undefined ? undefined : BigInt(before), limit: last });
      return { messages: page.messages.map(plainConnectMessage), hasMore: page.hasMore };
    },
    async markRead(actor, conversationId, seq) {
      return Number((await as(actor).sync.markRead({ conversationId, seq: BigInt(seq) })).readSeq);
    },
    async inboxEntry(actor, conversationId) {
      const entry = (await as(actor).sync.getInbox({})).entries.find((e) => e.conversation!.conversationId === conversationId)!;
      return {
        unreadCount: Number(entry.unreadCount),
        readSeq: Number(entry.readSeq),
        lastMessage: entry.lastMessage ? { seq: Number(entry.lastMessage.seq), text: entry.lastMessage.text } : null,
      };
    },
    async readers(actor, conversationId, seq) {
      return (await as(actor).sync.getMessageReaders({ conversationId, seq: BigInt(seq) })).readers.map((reader) => reader.userId);
    },
    async group(actor, groupId) {
      return plainGroup((await as(actor).groups.getGroup({ groupId })).group);
    },
  };
}

// Aliases give both surfaces one shape: GraphQL's `id` is the global (Node) id, the raw ids have their own names.
const MESSAGE_FIELDS = "id: messageId seq senderUserId kind text clientMsgId sentAt system { kind actorUserId targetUserIds title }";
const GROUP_FIELDS = "id: groupId name members(first: 1000) { nodes { userId role joinedSeq joinedAt } } conversation { id: conversationId kind lastSeq title }";

type GraphQLMessage = Omit<PlainMessage, "seq"> & { seq: string };
type GraphQLGroup = Omit<PlainGroup, "members" | "conversation"> & {
  members: { nodes: (Omit<PlainGroup["members"][number], "joinedSeq"> & { joinedSeq: string })[] };
  conversation: Omit<PlainGroup["conversation"], "lastSeq"> & { lastSeq: string };
};

// GraphQL says null where proto3 can only say "" (a title that is not set).
const plainMessage = (message: GraphQLMessage): PlainMessage => ({
  ...message,
  seq: Number(message.seq),
  system: message.system && { ...message.system, title: message.system.title ?? "" },
});
const plainGroup = (group: GraphQLGroup): PlainGroup => ({
  ...group,
  members: group.members.nodes.map((member) => ({ ...member, joinedSeq: Number(member.joinedSeq) })),
  conversation: { ...group.conversation, lastSeq: Number(group.conversation.lastSeq) },
});

function graphqlSurface(baseUrl: string): Surface {
  const token = (actor: unknown) => actor as string;
  const page = async (actor: unknown, args: Record<string, unknown>): Promise<Page> => {
    const data = await graphqlData<{ messages: { edges: { cursor: string; node: GraphQLMessage }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean } } }>(
      baseUrl,
      `query($c: ID!, $first: Int, $after: String, $last: Int, $before: String) {
        messages(conversationId: $c, first: $first, after: $after, last: $last, before: $before) {
          edges { cursor node { ${MESSAGE_FIELDS} } }
          pageInfo { hasNextPage hasPreviousPage }
        }
      }`,
      args,
      token(actor),
    );
    for (const edge of data.messages.edges) expect(edge.cursor).toBe(edge.node.seq);
    return { messages: data.messages.edges.map((edge) => plainMessage(edge.node)), hasMore: data.messages.pageInfo.hasNextPage || data.messages.pageInfo.hasPreviousPage };
  };
  return {
    async signUp(username) {
      const data = await graphqlData<{ signUp: { session: { accessToken: string; user: { userId: string } } } }>(
        baseUrl,
        `mutation($u: String!, $p: String!) { signUp(input: { username: $u, password: $p }) { session { accessToken user { userId } } } }`,
        { u: username, p: PASSWORD },
      );
      return { userId: data.signUp.session.user.userId, actor: data.signUp.session.accessToken };
    },
    async createGroup(actor, name, memberUserIds) {
      const data = await graphqlData<{ createGroup: { group: GraphQLGroup } }>(
        baseUrl,
        `mutation($n: String!, $m: [ID!]) { createGroup(input: { name: $n, memberUserIds: $m }) { group { ${GROUP_FIELDS} } } }`,
        { n: name, m: memberUserIds },
        token(actor),
      );
      return plainGroup(data.createGroup.group);
    },
    async send(actor, conversationId, text, clientMsgId) {
      const data = await graphqlData<{ sendMessage: { duplicate: boolean; message: GraphQLMessage } }>(
        baseUrl,
        `mutation($c: ID!, $t: String!, $id: String!) { sendMessage(input: { conversationId: $c, text: $t, clientMsgId: $id }) { duplicate message { ${MESSAGE_FIELDS} } } }`,
        { c: conversationId, t: text, id: clientMsgId },
        token(actor),
      );
      return { duplicate: data.sendMessage.duplicate, message: plainMessage(data.sendMessage.message) };
    },
    pageForward: (actor, c, first, after) => page(actor, { c, first, after: after === undefined ? undefined : String(after) }),
    pageBackward: (actor, c, last, before) => page(actor, { c, last, before: before === undefined ? undefined : String(before) }),
    async markRead(actor, conversationId, seq) {
      const data = await graphqlData<{ markRead: { readSeq: string } }>(
        baseUrl,
        `mutation($c: ID!, $s: UInt64!) { markRead(input: { conversationId: $c, seq: $s }) { readSeq } }`,
        { c: conversationId, s: String(seq) },
        token(actor),
      );
      return Number(data.markRead.readSeq);
    },
    async inboxEntry(actor, conversationId) {
      const data = await graphqlData<{ inbox: { nodes: { conversation: { id: string }; unreadCount: string; readSeq: string; lastMessage: { seq: string; text: string } | null }[] } }>(
        baseUrl,
        `{ inbox { nodes { conversation { id: conversationId } unreadCount readSeq lastMessage { seq text } } } }`,
        {},
        token(actor),
      );
      const entry = data.inbox.nodes.find((node) => node.conversation.id === conversationId)!;
      return {
        unreadCount: Number(entry.unreadCount),
        readSeq: Number(entry.readSeq),
        lastMessage: entry.lastMessage ? { seq: Number(entry.lastMessage.seq), text: entry.lastMessage.text } : null,
      };
    },
    async readers(actor, conversationId, seq) {
      const data = await graphqlData<{ messageReaders: { userId: string }[] }>(
        baseUrl,
        `query($c: ID!, $s: UInt64!) { messageReaders(conversationId: $c, seq: $s) { userId } }`,
        { c: conversationId, s: String(seq) },
        token(actor),
      );
      return data.messageReaders.map((reader) => reader.userId);
    },
    async group(actor, groupId) {
      const data = await graphqlData<{ group: GraphQLGroup }>(baseUrl, `query($g: ID!) { group(groupId: $g) { ${GROUP_FIELDS} } }`, { g: groupId }, token(actor));
      return plainGroup(data.group);
    },
  };
}

/**
 * Sign up two users, create a group, send (one send retried), page the history both ways, mark read,
 * then read the inbox, the readers and the group. Returns everything observed, with this run's ids,
 * times and keys replaced by stable names so two runs can be compared.
 */
async function runScenario(surface: Surface) {
  const run = randomBytes(3).toString("hex");
  const alice = await surface.signUp(`parity_a_${run}`);
  const bob = await surface.signUp(`parity_b_${run}`);
  const created = await surface.createGroup(alice.actor, "parity group", [bob.userId]);
  const groupId = created.id;

  const sends = [];
  for (let i = 1; i <= 5; i++) sends.push(await surface.send(alice.actor, groupId, `hello ${i}`, `${run}-alice-${i}`));
  // Bob's own sends move his read watermark to them (8); Alice's next two are unread for him.
  for (let i = 1; i <= 2; i++) sends.push(await surface.send(bob.actor, groupId, `reply ${i}`, `${run}-bob-${i}`));
  for (let i = 6; i <= 7; i++) sends.push(await surface.send(alice.actor, groupId, `hello ${i}`, `${run}-alice-${i}`));
  // A retry of an acknowledged send: same message, nothing stored.
  sends.push(await surface.send(alice.actor, groupId, "hello 3", `${run}-alice-3`));

  const forward: Page[] = [];
  for (let after: number | undefined; ; ) {
    const page = await surface.pageForward(bob.actor, groupId, 3, after);
    forward.push(page);
    if (!page.hasMore) break;
    after = page.messages.at(-1)!.seq;
  }
  const backward: Page[] = [];
  for (let before: number | undefined; ; ) {
    const page = await surface.pageBackward(bob.actor, groupId, 3, before);
    backward.push(page);
    if (!page.hasMore) break;
    before = page.messages[0]!.seq;
  }

  const readSeq = await surface.markRead(bob.actor, groupId, 9);
  const readBack = await surface.markRead(bob.actor, groupId, 4);
  const bobInbox = await surface.inboxEntry(bob.actor, groupId);
  const aliceInbox = await surface.inboxEntry(alice.actor, groupId);
  const readersOf2 = await surface.readers(alice.actor, groupId, 2);
  const readersOf10 = await surface.readers(alice.actor, groupId, 10);
  const group = await surface.group(bob.actor, groupId);

  const observed = { created, sends, forward, backward, readSeq, readBack, bobInbox, aliceInbox, readersOf2, readersOf10, group };
  // Names for what differs between runs.
  const names = new Map<string, string>([
    [alice.userId, "<alice>"],
    [bob.userId, "<bob>"],
    [groupId, "<group>"],
  ]);
  let messages = 0;
  const json = JSON.stringify(observed, (key, value: unknown) => {
    if (typeof value !== "string") return value;
    if (names.has(value)) return names.get(value);
    if (key === "id" && value.startsWith("m_")) return names.set(value, `<message ${++messages}>`).get(value);
    // Times differ between runs (and may or may not collide within a millisecond); the read-back
    // through the other surface compares them exactly.
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(value)) return "<time>";
    if (key === "clientMsgId") return value.startsWith(run) ? value.slice(run.length) : "<system>";
    return value;
  });
  return { observed, normalized: JSON.parse(json) as typeof observed, alice, bob, groupId };
}

describe("GraphQL and Connect give the same data", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("1. parity: sign up two users, create a group, send, page history, mark read", async () => {
    const viaGraphQL = await runScenario(graphqlSurface(server.url));
    const viaConnect = await runScenario(connectSurface(server.url));
    expect(viaGraphQL.normalized).toEqual(viaConnect.normalized);

    // The scenario says something: one order, the retry is a duplicate, pages cover it all once.
    const { observed } = viaGraphQL;
    expect(observed.sends.map((s) => [s.message.seq, s.duplicate])).toEqual([
      [2, false], [3, false], [4, false], [5, false], [6, false], [7, false], [8, false], [9, false], [10, false], [4, true],
    ]);
    expect(observed.sends.at(-1)!.message).toEqual(observed.sends[2]!.message);
    expect(observed.forward.flatMap((page) => page.messages.map((m) => m.seq))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(observed.forward.map((page) => page.hasMore)).toEqual([true, true, true, false]);
    expect(observed.backward.map((page) => page.messages.map((m) => m.seq))).toEqual([[8, 9, 10], [5, 6, 7], [2, 3, 4], [1]]);
    expect(observed.forward[0]!.messages[0]!.system).toMatchObject({ kind: "GROUP_CREATED", title: "parity group" });
    expect([observed.readSeq, observed.readBack]).toEqual([9, 9]);
    expect(observed.bobInbox).toEqual({ unreadCount: 1, readSeq: 9, lastMessage: { seq: 10, text: "hello 7" } });
    expect(observed.readersOf2).toEqual([viaGraphQL.bob.userId]);
    expect(observed.readersOf10).toEqual([]);
    expect(observed.group.members.map((m) => [m.userId, m.role])).toEqual([
      [viaGraphQL.alice.userId, "OWNER"],
      [viaGraphQL.bob.userId, "MEMBER"],
    ]);

    // Data written through GraphQL reads back identically through Connect, times included.
    const bobOverConnect = new ChatClient({ baseUrl: server.url });
    await bobOverConnect.logIn(await usernameOf(server.url, viaGraphQL.bob.actor as string), PASSWORD);
    const history = (await bobOverConnect.allMessages(viaGraphQL.groupId)).map(plainConnectMessage);
    expect(history).toEqual(observed.forward.flatMap((page) => page.messages));
    expect(await connectSurface(server.url).group(bobOverConnect, viaGraphQL.groupId)).toEqual(observed.group);
  });
});

async function usernameOf(baseUrl: string, token: string): Promise<string> {
  return (await graphqlData<{ me: { user: { username: string } } }>(baseUrl, "{ me { user { username } } }", {}, token)).me.user.username;
}
