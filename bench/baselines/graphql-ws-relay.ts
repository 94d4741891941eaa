import {
  GraphQLBoolean,
  GraphQLError,
  GraphQLID,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  validate,
  type DocumentNode,
} from "graphql";
import type { Context } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import { answerProbes } from "./probe.js";

/**
 * The GraphQL baseline: a plain graphql-ws server that keeps nothing. A client subscribes to
 * `messages(conversationIds)` and sends with `send(conversationId, text)` on the same socket; the
 * conversation's other subscribers get `{ conversationId, text }`. Documents are parsed and validated
 * once per distinct text (PERFORMANCE.md: graphql-ws spends most of its time in parse and validate
 * otherwise, and the gateway caches them too).
 */

interface Event {
  readonly conversationId: string | null;
  readonly text: string | null;
}

interface Subscriber {
  /** The sender's own socket gets no copy, as in the ws relay. */
  readonly connection: Context;
  push(event: Event): void;
}

interface RelayContext {
  readonly connection: Context;
}

const rooms = new Map<string, Set<Subscriber>>();

/** The first event carries no message: it says the subscription is live, as the gateway's READY does. */
const LIVE: Event = { conversationId: null, text: null };

function feed(connection: Context, conversationIds: readonly string[]): AsyncIterableIterator<Event> {
  const queued: Event[] = [LIVE];
  let waiting: ((result: IteratorResult<Event>) => void) | undefined;
  let finished = false;
  const subscriber: Subscriber = {
    connection,
    push(event) {
      if (!waiting) return void queued.push(event);
      const wake = waiting;
      waiting = undefined;
      wake({ done: false, value: event });
    },
  };
  for (const id of conversationIds) {
    let members = rooms.get(id);
    if (!members) rooms.set(id, (members = new Set()));
    members.add(subscriber);
  }
  // graphql-ws calls return() on the client's complete and when the socket closes.
  const finish = async (): Promise<IteratorResult<Event>> => {
    if (!finished) {
      finished = true;
      for (const id of conversationIds) rooms.get(id)?.delete(subscriber);
      waiting?.({ done: true, value: undefined });
    }
    return { done: true, value: undefined };
  };
  return {
    next: () => {
      if (queued.length > 0) return Promise.resolve({ done: false, value: queued.shift()! });
      if (finished) return finish();
      return new Promise((resolve) => (waiting = resolve));
    },
    return: finish,
    throw: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

const eventType = new GraphQLObjectType<Event>({
  name: "MessageEvent",
  fields: { conversationId: { type: GraphQLID }, text: { type: GraphQLString } },
});

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLBoolean, resolve: () => true } } }),
  mutation: new GraphQLObjectType<unknown, RelayContext>({
    name: "Mutation",
    fields: {
      send: {
        type: GraphQLBoolean,
        args: { conversationId: { type: new GraphQLNonNull(GraphQLID) }, text: { type: new GraphQLNonNull(GraphQLString) } },
        resolve: (_root, args: { conversationId: string; text: string }, context) => {
          const event: Event = { conversationId: args.conversationId, text: args.text };
          for (const subscriber of rooms.get(args.conversationId) ?? []) if (subscriber.connection !== context.connection) subscriber.push(event);
          return true;
        },
      },
    },
  }),
  subscription: new GraphQLObjectType<Event, RelayContext>({
    name: "Subscription",
    fields: {
      messages: {
        type: eventType,
        args: { conversationIds: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLID))) } },
        subscribe: (_root, args: { conversationIds: string[] }, context) => feed(context.connection, args.conversationIds),
        resolve: (event: Event) => event,
      },
    },
  }),
});

/** Bounded, least recently used first out (a Map keeps insertion order; a hit moves its entry to the end). */
const DOCUMENT_CACHE_SIZE = 1000;
const documents = new Map<string, DocumentNode | readonly GraphQLError[]>();

function prepare(query: string): DocumentNode | readonly GraphQLError[] {
  let entry = documents.get(query);
  if (entry) {
    documents.delete(query);
  } else {
    try {
      const document = parse(query);
      const errors = validate(schema, document);
      entry = errors.length > 0 ? errors : document;
    } catch (error) {
      entry = [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
    }
    if (documents.size >= DOCUMENT_CACHE_SIZE) documents.delete(documents.keys().next().value!);
  }
  documents.set(query, entry);
  return entry;
}

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
useServer(
  {
    schema,
    onSubscribe: (connection, _id, payload) => {
      const document = prepare(payload.query);
      if (Array.isArray(document)) return document as readonly GraphQLError[];
      return {
        schema,
        document: document as DocumentNode,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue: { connection } satisfies RelayContext,
      };
    },
  },
  server,
);

server.on("listening", () => {
  process.send?.({ type: "listening", port: (server.address() as { port: number }).port });
});
answerProbes();
