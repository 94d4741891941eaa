import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "graphql-ws";
import { defaultFieldResolver, type GraphQLObjectType, type GraphQLSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startChatServer, type ChatServer } from "../gateway/app.js";
import { loadConfig } from "../gateway/config.js";
import { createLogger } from "../gateway/logger.js";
import { graphqlWsClient, LiveSubscription } from "./support/graphql-client.js";
import { removeDir } from "./support/server-process.js";
import { newUser } from "./support/users.js";

/**
 * The gateway runs in this process, so the test can count what the GraphQL layer really does: how
 * often a document is validated (the depth rule runs once per real validation, and a document that
 * was parsed again would be validated again) and how often a message's fields are resolved.
 */
// In production there is one graphql module. Vitest would load the ESM build for the files it
// transforms (graphql/*.ts) and leave yoga, Pothos and graphql-ws on the CommonJS one: the same one everywhere here too.
vi.mock("graphql", () => import("graphql/index.js"));

const counts = vi.hoisted(() => ({ validations: 0, messageTextResolved: 0 }));

vi.mock("../graphql/limits.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../graphql/limits.js")>();
  return {
    ...original,
    queryDepthRule: (maxDepth: number) => {
      const rule = original.queryDepthRule(maxDepth);
      return Object.defineProperty((context: Parameters<typeof rule>[0]) => (counts.validations++, rule(context)), "name", { value: rule.name });
    },
  };
});

vi.mock("../graphql/schema/index.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../graphql/schema/index.js")>();
  return {
    buildChatSchema: (): GraphQLSchema => {
      const schema = original.buildChatSchema();
      const text = (schema.getType("Message") as GraphQLObjectType).getFields().text!;
      const resolve = text.resolve ?? defaultFieldResolver;
      text.resolve = (...args) => (counts.messageTextResolved++, resolve(...args));
      return schema;
    },
  };
});

interface FeedEvent {
  readonly messages: { readonly kind: string; readonly message: Record<string, string> | null };
}

const FEED = `subscription Feed($resume: [ConversationCursorInput!]) {
  messages(resume: $resume) { kind message { id: messageId conversationId seq text senderUserId } }
}`;
// The same subscription with another selection, one that depends on a variable below the root field.
const FEED_TEXT_ONLY = `subscription TextOnly($withSeq: Boolean!) {
  messages { kind message { text seq @include(if: $withSeq) } }
}`;

describe("GraphQL hot path: cached documents and one execution per selection", () => {
  let server: ChatServer;
  let dataDir: string;
  const clients: Client[] = [];
  const wsClient = (token: string) => {
    const client = graphqlWsClient(server.url, token);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "chat-graphql-hot-"));
    const config = loadConfig({ CHAT_PORT: "0", CHAT_HOST: "127.0.0.1", CHAT_DATA_DIR: dataDir, CHAT_PASSWORD_COST: "10", CHAT_LOG_LEVEL: "silent" }, []);
    server = await startChatServer(config, createLogger("silent"));
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await server?.stop();
    removeDir(dataDir);
  });

  async function ready(subscription: LiveSubscription<FeedEvent>): Promise<void> {
    expect((await subscription.next()).messages.kind).toBe("READY");
  }

  it("validates a subscription document once however many connections subscribe with it", async () => {
    const user = await newUser(server.url, "cache");
    const document = `subscription CacheProbe { messages { kind } }`;
    const before = counts.validations;
    for (let i = 0; i < 5; i++) await ready(new LiveSubscription<FeedEvent>(wsClient(user.session.accessToken), document));
    expect(counts.validations - before).toBe(1);
  });

  it("executes a group message once per distinct selection, and every subscriber gets its own right payload", async () => {
    const K = 6;
    const sender = await newUser(server.url, "sender");
    const members = await Promise.all(Array.from({ length: K }, (_, i) => newUser(server.url, `member${i}`)));
    const outsider = await newUser(server.url, "outsider");
    const { group } = await sender.groups.createGroup({ name: "fan-out", memberUserIds: members.map((member) => member.userId) });
    const groupId = group!.groupId;

    // Each member subscribes with its own `resume` cursors: the root field's arguments differ, the selection does not.
    const same = members.map((member) => new LiveSubscription<FeedEvent>(wsClient(member.session.accessToken), FEED, { resume: [{ conversationId: groupId, seq: "1" }] }));
    const other = new LiveSubscription<FeedEvent>(wsClient(members[0]!.session.accessToken), FEED_TEXT_ONLY, { withSeq: false });
    const outside = new LiveSubscription<FeedEvent>(wsClient(outsider.session.accessToken), FEED);
    for (const subscription of same) {
      await ready(subscription);
      expect((await subscription.next()).messages.kind).toBe("CAUGHT_UP");
    }
    await ready(other);
    await ready(outside);
    // The outsider's feed has its own direct message.
    const outsiderDirect = await outsider.send({ recipientUserId: sender.userId }, "only for the sender");
    expect((await outside.next()).messages.message).toMatchObject({ id: outsiderDirect.message!.messageId, text: "only for the sender" });

    const before = counts.messageTextResolved;
    const sent = await sender.send({ conversationId: groupId }, "hello, group");
    const expected = { id: sent.message!.messageId, conversationId: groupId, seq: String(sent.message!.seq), text: "hello, group", senderUserId: sender.userId };
    for (const subscription of same) expect(await subscription.next()).toEqual({ messages: { kind: "MESSAGE", message: expected } });
    expect(await other.next()).toEqual({ messages: { kind: "MESSAGE", message: { text: "hello, group" } } });
    // K subscribers with one selection and one with another: two executions, not K + 1.
    expect(counts.messageTextResolved - before).toBe(2);
    // Nothing of the group reaches a non-member.
    expect(await outside.quietFor(500)).toBe(true);
  });
});
