import { randomUUID } from "node:crypto";
import { graphql } from "../gql/index.js";
import { ChatGraphQL } from "./client.js";

const SignUp = graphql(`
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) {
      session { accessToken user { userId username } }
      userErrors { code field message }
    }
  }
`);

const Send = graphql(`
  mutation Send($input: SendMessageInput!) {
    sendMessage(input: $input) {
      duplicate
      message { conversationId seq text }
      userErrors { code field message }
    }
  }
`);

const History = graphql(`
  query History($conversationId: ID!, $first: Int, $after: String, $last: Int, $before: String) {
    messages(conversationId: $conversationId, first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { seq text } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`);

const Feed = graphql(`
  subscription Feed($resume: [ConversationCursorInput!]) {
    messages(resume: $resume) {
      kind
      heads { conversationId seq }
      message { conversationId seq text }
      reconnectAfterMs
    }
  }
`);

type Cursors = Map<string, string>;

async function signUp(client: ChatGraphQL, name: string) {
  const { signUp } = await client.request(SignUp, { input: { username: `${name}_${randomUUID().slice(0, 8)}`, password: "correct horse battery" } });
  if (!signUp.session) throw new Error(`sign-up refused: ${signUp.userErrors.map((error) => error.code).join(", ")}`);
  client.token = signUp.session.accessToken;
  return signUp.session.user;
}

async function send(client: ChatGraphQL, recipientUserId: string, text: string, clientMsgId = randomUUID()) {
  const { sendMessage } = await client.request(Send, { input: { recipientUserId, text, clientMsgId } });
  if (!sendMessage.message) throw new Error(`send refused: ${sendMessage.userErrors.map((error) => error.code).join(", ")}`);
  return { ...sendMessage.message, duplicate: sendMessage.duplicate === true };
}

/** Reads the feed until `count` messages came (and, when resuming, CAUGHT_UP), keeping a cursor per conversation. */
async function receive(feed: AsyncIterableIterator<{ messages: { kind: string; heads?: { conversationId: string; seq: string }[] | null; message?: { conversationId: string; seq: string; text: string } | null } }>, cursors: Cursors, count: number, resuming: boolean) {
  const texts: string[] = [];
  let caughtUp = !resuming;
  for await (const { messages: event } of feed) {
    if (event.kind === "READY" && cursors.size === 0) for (const head of event.heads ?? []) cursors.set(head.conversationId, head.seq);
    if (event.kind === "CAUGHT_UP") caughtUp = true;
    if (event.kind === "MESSAGE" && event.message) {
      cursors.set(event.message.conversationId, event.message.seq);
      texts.push(event.message.text);
    }
    if (event.kind === "GOING_AWAY") throw new Error("the server is going away: subscribe again with the cursors");
    if (texts.length >= count && caughtUp) break;
  }
  return texts;
}

/** Sign up two users, send (one send retried), receive live, resume after a disconnect, page history both ways. */
async function main(baseUrl: string, persisted: boolean) {
  const alice = new ChatGraphQL(baseUrl, persisted);
  const bob = new ChatGraphQL(baseUrl, persisted);
  await signUp(alice, "alice");
  const bobUser = await signUp(bob, "bob");

  const cursors: Cursors = new Map();
  const live = bob.subscribe(Feed, {});
  const first = await live.next();
  if (first.done || first.value.messages.kind !== "READY") throw new Error("the feed did not start with READY");
  for (const head of first.value.messages.heads ?? []) cursors.set(head.conversationId, head.seq);

  const retried = randomUUID();
  const sent = [await send(alice, bobUser.userId, "one", retried), await send(alice, bobUser.userId, "two")];
  const duplicate = await send(alice, bobUser.userId, "one", retried);
  const liveTexts = await receive(live, cursors, 2, false);
  await live.return?.();

  // Offline: two more messages, then the feed resumes from the cursors.
  await send(alice, bobUser.userId, "three");
  await send(alice, bobUser.userId, "four");
  const resumed = bob.subscribe(Feed, { resume: [...cursors].map(([conversationId, seq]) => ({ conversationId, seq })) });
  const resumedTexts = await receive(resumed, cursors, 2, true);
  await resumed.return?.();

  const conversationId = sent[0]!.conversationId;
  const newest = (await bob.request(History, { conversationId, last: 2 })).messages!;
  const older = (await bob.request(History, { conversationId, last: 2, before: newest.pageInfo.startCursor })).messages!;
  const forward = (await bob.request(History, { conversationId, first: 3 })).messages!;

  await Promise.all([alice.close(), bob.close()]);
  return {
    duplicate: duplicate.duplicate && duplicate.seq === sent[0]!.seq,
    live: liveTexts,
    resumed: resumedTexts,
    backward: [...older.edges, ...newest.edges].map((edge) => edge.node.text),
    olderHasPrevious: older.pageInfo.hasPreviousPage,
    forward: forward.edges.map((edge) => edge.node.text),
    forwardHasNext: forward.pageInfo.hasNextPage,
  };
}

const [baseUrl = "http://127.0.0.1:8080"] = process.argv.slice(2);
main(baseUrl, process.env.CHAT_EXAMPLE_PERSISTED === "1").then(
  (summary) => console.log(JSON.stringify(summary)),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
