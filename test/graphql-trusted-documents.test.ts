import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphqlWsClient, LiveSubscription } from "./support/graphql-client.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

const ME = "query Me { me { user { username } } }";
const FEED = "subscription Feed { messages { kind } }";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

interface Answer {
  status: number;
  body: { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string; grpcCode?: string } }[] };
}

async function post(server: ServerProcess, body: Record<string, unknown>, token?: string): Promise<Answer> {
  const response = await fetch(`${server.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

const apq = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
const codeOf = (answer: Answer) => answer.body.errors?.[0]?.extensions?.code;

describe("GraphQL trusted documents", () => {
  const servers: ServerProcess[] = [];
  const sockets: Client[] = [];
  const dir = mkdtempSync(join(tmpdir(), "chat-trusted-"));
  const file = join(dir, "persisted-documents.json");

  beforeAll(() => {
    // As graphql-codegen's client-preset writes it: `sha256:`-prefixed ids are accepted as well as bare ones.
    writeFileSync(file, JSON.stringify({ [`sha256:${sha256(ME)}`]: ME, [sha256(FEED)]: FEED }));
  });
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    for (const server of servers) {
      await server.kill("SIGTERM");
      removeDir(server.dataDir);
    }
    removeDir(dir);
  });

  it("only: runs the file's documents by id (HTTP and WebSocket) and refuses any other document", async () => {
    const server = await startServer({ env: { CHAT_GRAPHQL_TRUSTED_DOCUMENTS: "only", CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE: file } });
    servers.push(server);
    const alice = await newUser(server.url, "alice");
    const token = alice.session.accessToken;

    const byId = await post(server, { documentId: `sha256:${sha256(ME)}` }, token);
    expect(byId).toMatchObject({ status: 200, body: { data: { me: { user: { username: alice.session.user!.username } } } } });
    expect((await post(server, { extensions: apq(sha256(ME)) }, token)).body.data).toEqual(byId.body.data);

    const own = await post(server, { query: ME }, token);
    expect([own.status, codeOf(own), own.body.data]).toEqual([400, "PERSISTED_QUERY_ONLY", undefined]);
    const unknown = await post(server, { documentId: sha256("{ me { deviceId } }") }, token);
    expect([unknown.status, codeOf(unknown)]).toEqual([400, "PERSISTED_QUERY_NOT_IN_LIST"]);
    expect(codeOf(await post(server, {}, token))).toBe("PERSISTED_QUERY_ID_REQUIRED");

    const socket = graphqlWsClient(server.url, token);
    sockets.push(socket);
    const trustedFeed = subscribeById(socket, sha256(FEED));
    expect((await trustedFeed.next()).messages.kind).toBe("READY");
    trustedFeed.close();
    const refused = new LiveSubscription(socket, "subscription { messages { kind } }");
    const event = await refused.nextEvent();
    const errors = event.kind === "error" ? (event.error as { extensions?: { code?: string } }[]) : [];
    expect(errors[0]?.extensions?.code).toBe("PERSISTED_QUERY_ONLY");
  });

  it("register: a document sent with its hash is kept, then the hash alone runs it; a wrong hash is refused", async () => {
    const server = await startServer({ env: { CHAT_GRAPHQL_TRUSTED_DOCUMENTS: "register" } });
    servers.push(server);
    const bob = await newUser(server.url, "bob");
    const token = bob.session.accessToken;
    const query = `query Mine${randomUUID().slice(0, 8)} { me { deviceId } }`;
    const hash = sha256(query);

    // The automatic persisted queries exchange: hash alone, "not found", then query and hash, then hash alone.
    const first = await post(server, { extensions: apq(hash) }, token);
    expect([codeOf(first), first.body.errors?.[0]?.message]).toEqual(["PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"]);
    expect((await post(server, { query, extensions: apq(hash) }, token)).body.data).toEqual({ me: { deviceId: bob.session.deviceId } });
    expect((await post(server, { extensions: apq(hash) }, token)).body.data).toEqual({ me: { deviceId: bob.session.deviceId } });
    expect((await post(server, { documentId: hash }, token)).body.data).toEqual({ me: { deviceId: bob.session.deviceId } });

    const forged = await post(server, { query: "{ me { user { userId } } }", extensions: apq(hash.replace(/^./, hash[0] === "a" ? "b" : "a")) }, token);
    expect([forged.status, codeOf(forged)]).toEqual([400, "PERSISTED_QUERY_HASH_MISMATCH"]);
    // Plain documents still run.
    expect((await post(server, { query: "{ me { deviceId } }" }, token)).body.data).toEqual({ me: { deviceId: bob.session.deviceId } });
  });

  it("only without a file stops the gateway with a message naming both settings", async () => {
    await expect(startServer({ env: { CHAT_GRAPHQL_TRUSTED_DOCUMENTS: "only" } })).rejects.toThrow(/CHAT_GRAPHQL_TRUSTED_DOCUMENTS=only needs CHAT_GRAPHQL_TRUSTED_DOCUMENTS_FILE/);
  });
});

/** A subscription that names its document by id (graphql-ws passes the payload through). */
function subscribeById(socket: Client, documentId: string) {
  return new LiveSubscription<{ messages: { kind: string } }>(socket, "", {}, { documentId });
}
