import { Code, ConnectError } from "@connectrpc/connect";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "graphql-ws";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatClient } from "../clients/sdk/index.js";
import { ErrorDetailSchema, ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { createPasswordHasher } from "../services/accounts/index.js";
import { resolveSecret } from "../gateway/generated-secrets.js";
import { createSchema, createYoga } from "graphql-yoga";
import { DEFAULT_DOCUMENT_LIMITS, documentGuardPlugin } from "../graphql/guard.js";
import { graphqlHttp, graphqlWsClient, LiveSubscription, type GraphQLErrorShape } from "./support/graphql-client.js";
import { startCluster } from "./support/cluster.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, PASSWORD, uniqueName } from "./support/users.js";

const ALLOWED_ORIGIN = "http://app.example";

const reasonOf = (error: unknown) => (error instanceof ConnectError ? error.findDetails(ErrorDetailSchema)[0] : undefined);

/** How a graphql-ws socket ended: the close code and reason, or "acked" if the server accepted it. */
function connectionOutcome(baseUrl: string, connectionParams: Record<string, unknown>): Promise<{ code: number; reason: string } | "acked"> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
    socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: connectionParams })));
    socket.on("message", (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === "connection_ack") {
        resolve("acked");
        socket.close(1000);
      }
    });
    socket.on("close", (code, reason) => resolve({ code, reason: String(reason) }));
    socket.on("error", () => {});
  });
}

/** The upgrade's HTTP answer for this Origin: 101 (opened) or the refusal status. */
function upgradeStatus(baseUrl: string, origin: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws", { origin });
    socket.on("open", () => {
      resolve(101);
      socket.close(1000);
    });
    socket.on("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on("error", () => {});
  });
}

describe("hardened public surface", () => {
  let server: ServerProcess;
  let alice: ChatClient;
  let bob: ChatClient;

  beforeAll(async () => {
    server = await startServer({
      env: {
        CHAT_TRUST_FORWARDED_FOR: "on",
        CHAT_ALLOWED_ORIGINS: ALLOWED_ORIGIN,
        // The default cost: a hash is long enough that a flood of them keeps the hashing thread busy.
        CHAT_PASSWORD_COST: "15",
        // One refill a minute: on a loaded machine 40 tries can take over ten seconds, and at the
        // default six a minute a refilled token would change the counts the tests expect.
        CHAT_LOGIN_PER_MINUTE: "1",
      },
    });
    alice = await newUser(server.url, "alice");
    bob = await newUser(server.url, "bob");
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("throttles wrong-password logins per account and address, and lets the owner in from another address", async () => {
    const attacker = new ChatClient({ baseUrl: server.url });
    const username = alice.session.user!.username;
    const outcomes: string[] = [];
    let retryAfterMs = "";
    for (let i = 0; i < 40; i++) {
      const error = await attacker.accounts
        .logIn({ username, password: "wrong password", deviceName: "guess" }, { headers: { "x-forwarded-for": "203.0.113.7" } })
        .then(() => undefined, (failure: unknown) => failure);
      const detail = reasonOf(error);
      outcomes.push(`${(error as ConnectError).code}:${ErrorReason[detail?.reason ?? 0]}`);
      if (detail?.reason === ErrorReason.RATE_LIMITED) retryAfterMs = detail.metadata.retry_after_ms ?? "";
    }
    const limited = outcomes.filter((outcome) => outcome === `${Code.ResourceExhausted}:RATE_LIMITED`).length;
    expect(outcomes.filter((outcome) => outcome === `${Code.Unauthenticated}:BAD_CREDENTIALS`).length).toBe(10);
    expect(limited).toBe(30);
    expect(Number(retryAfterMs)).toBeGreaterThan(0);

    const owner = new ChatClient({ baseUrl: server.url });
    const session = await owner.accounts.logIn({ username, password: PASSWORD, deviceName: "phone" }, { headers: { "x-forwarded-for": "198.51.100.20" } });
    expect(session.session?.user?.userId).toBe(alice.userId);
  });

  it("throttles GraphQL logins with 429, Retry-After and RATE_LIMITED, aliased ones included", async () => {
    const username = bob.session.user!.username;
    const post = (query: string, address: string) =>
      fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": address },
        body: JSON.stringify({ query }),
      });
    const one = `mutation { logIn(input: { username: "${username}", password: "wrong password" }) { session { deviceId } userErrors { code } } }`;
    type LogInBody = { data: { logIn: { userErrors: { code: string }[] } } | null; errors?: GraphQLErrorShape[] };
    const codeOf = (body: LogInBody) => body.errors?.[0]?.extensions?.code ?? body.data?.logIn.userErrors[0]?.code;
    const codes: (string | undefined)[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 25; i++) {
      last = await post(one, "203.0.113.8");
      codes.push(codeOf((await last.json()) as LogInBody));
    }
    expect(codes.filter((code) => code === "BAD_CREDENTIALS")).toHaveLength(10);
    expect(codes.filter((code) => code === "RATE_LIMITED")).toHaveLength(15);
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    // Aliases are no way around it: past 30 the document is refused, and below that every alias is
    // an attempt drawn from the same buckets, so the eleventh is refused and ends the mutation.
    const aliases = (count: number) =>
      `mutation { ${Array.from({ length: count }, (_, i) => `a${i}: logIn(input: { username: "${username}", password: "wrong ${i}" }) { userErrors { code } }`).join(" ")} }`;
    const tooMany = (await (await post(aliases(40), "203.0.113.9")).json()) as LogInBody;
    expect(tooMany.errors?.map((error) => error.extensions!.code)).toEqual(["TOO_MANY_ALIASES"]);
    const some = await post(aliases(25), "203.0.113.9");
    expect(some.status).toBe(429);
    const someBody = (await some.json()) as LogInBody;
    expect(someBody.errors?.map((error) => [error.path?.[0], error.extensions!.code])).toEqual([["a10", "RATE_LIMITED"]]);
  });

  it("acks a send while a wrong-password flood is still being hashed", async () => {
    const carol = await newUser(server.url, "carol");
    const dave = await newUser(server.url, "dave");
    const conversationId = (await carol.send({ recipientUserId: dave.userId }, "before")).message!.conversationId;
    const order: string[] = [];
    // 40 attempts from 40 addresses at 40 names: no throttle applies, every one is hashed.
    const flood = Array.from({ length: 40 }, (_, i) =>
      new ChatClient({ baseUrl: server.url }).accounts
        .logIn({ username: uniqueName("ghost"), password: "wrong password", deviceName: "x" }, { headers: { "x-forwarded-for": `192.0.2.${i + 1}` } })
        .catch((error: unknown) => {
          order.push(`login:${ErrorReason[reasonOf(error)?.reason ?? 0]}`);
        }),
    );
    // Wait until the flood is in the server (the first answers), then send.
    while (order.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await carol.send({ conversationId }, "during the flood");
    order.push("ack");
    await Promise.all(flood);
    expect(order).toHaveLength(41);
    expect(order.filter((entry) => entry === "login:BAD_CREDENTIALS").length).toBe(40);
    // Hashing runs one at a time on its own thread: dozens were still queued when the ack came.
    expect(order.indexOf("ack")).toBeLessThan(20);
  });

  it("refuses new hashes past the queue limit with a retryable UNAVAILABLE", async () => {
    const hasher = createPasswordHasher({ threads: 1, queueLimit: 2 });
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => hasher.hash("a password", 12)));
      const refused = results.filter((result) => result.status === "rejected").map((result) => (result as PromiseRejectedResult).reason);
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(3);
      expect(refused).toHaveLength(3);
      expect(refused[0]).toMatchObject({ code: "unavailable", reason: ErrorReason.UNAVAILABLE, metadata: { retry_after_ms: expect.any(String) } });
      const stored = await hasher.hash("a password", 12);
      expect(await hasher.verify("a password", stored)).toBe(true);
      expect(await hasher.verify("another one", stored)).toBe(false);
    } finally {
      await hasher.close();
    }
  });

  it("limits GraphQL documents: size, tokens, aliases, operations and introspection", async () => {
    const code = async (query: string) => {
      const result = await graphqlHttp(server.url, query);
      expect(result.data ?? null, JSON.stringify(result).slice(0, 300)).toBeNull();
      return result.errors!.map((error) => error.extensions!.code);
    };
    expect(await code(`{ ${"__typename ".repeat(7_000)} }`)).toEqual(["DOCUMENT_TOO_LARGE"]);
    expect(await code(`query { ${"t ".repeat(6_000)} }`)).toEqual(["DOCUMENT_TOO_LARGE"]);
    expect(await code(`{ ${Array.from({ length: 31 }, (_, i) => `t${i}: __typename`).join(" ")} }`)).toEqual(["TOO_MANY_ALIASES"]);
    const operations = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: Array.from({ length: 11 }, (_, i) => `query q${i} { __typename }`).join("\n"), operationName: "q0" }),
    });
    expect(((await operations.json()) as { errors: GraphQLErrorShape[] }).errors.map((error) => error.extensions!.code)).toEqual(["TOO_MANY_OPERATIONS"]);
    const schemaSelection = "__schema { types { name fields { name args { name type { name } } type { name } } } }";
    expect(await code(`{ a: ${schemaSelection} b: ${schemaSelection} }`)).toEqual(["TOO_MUCH_INTROSPECTION"]);
    // The attack document: hundreds of aliased introspections, answered with one small refusal.
    const attack = `{ ${Array.from({ length: 500 }, (_, i) => `s${i}: ${schemaSelection}`).join(" ")} }`;
    const response = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: attack }) });
    expect((await response.text()).length).toBeLessThan(2_000);

    // Thirty aliases and one introspection are allowed, and answered.
    const allowed = await graphqlHttp<Record<string, unknown>>(server.url, `{ ${Array.from({ length: 30 }, (_, i) => `t${i}: __typename`).join(" ")} ${schemaSelection} }`);
    expect(allowed.errors).toBeUndefined();
    expect(allowed.data?.t29).toBe("Query");
  });

  it("refuses cross-site form posts and unknown origins; CORS only for allowed ones", async () => {
    const name = uniqueName("csrf");
    const form = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" },
      body: `query=${encodeURIComponent(`mutation { signUp(input: { username: "${name}", password: "${PASSWORD}" }) { session { deviceId } userErrors { code } } }`)}`,
    });
    expect(form.status).toBe(403);
    const sameSiteForm = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `query=${encodeURIComponent(`mutation { signUp(input: { username: "${name}", password: "${PASSWORD}" }) { session { deviceId } userErrors { code } } }`)}`,
    });
    expect(sameSiteForm.status).toBe(415);
    expect(((await sameSiteForm.json()) as { errors: GraphQLErrorShape[] }).errors[0]!.extensions!.code).toBe("CSRF_REQUEST_REFUSED");
    // Neither created the account: the name is still free.
    const free = await graphqlHttp(server.url, `mutation { signUp(input: { username: "${name}", password: "${PASSWORD}" }) { session { deviceId } userErrors { code } } }`);
    expect(free.errors).toBeUndefined();
    expect(free.data?.signUp).toMatchObject({ session: { deviceId: expect.any(String) }, userErrors: [] });

    const preflight = (origin: string) =>
      fetch(`${server.url}/graphql`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" } });
    const evil = await preflight("http://evil.example");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    expect(evil.headers.get("access-control-allow-credentials")).toBeNull();
    const friend = await preflight(ALLOWED_ORIGIN);
    expect(friend.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(friend.headers.get("access-control-allow-credentials")).toBe("true");
    const same = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", origin: server.url }, body: JSON.stringify({ query: "{ __typename }" }) });
    expect(same.status).toBe(200);

    expect(await upgradeStatus(server.url, "http://evil.example")).toBe(403);
    expect(await upgradeStatus(server.url, ALLOWED_ORIGIN)).toBe(101);
    expect(await upgradeStatus(server.url, server.url)).toBe(101);
  });

  it("closes a graphql-ws connection at connection_init: 4401 without a token, 4403 with a bad one", async () => {
    expect(await connectionOutcome(server.url, {})).toMatchObject({ code: 4401 });
    expect(await connectionOutcome(server.url, { authorization: "Bearer v1.forged.token" })).toMatchObject({ code: 4403 });
    expect(await connectionOutcome(server.url, { authorization: `Bearer ${alice.session.accessToken}` })).toBe("acked");
    // Anonymous sign-up and log-in stay possible over HTTP.
    const logIn = await graphqlHttp<{ logIn: { session: { user: { username: string } } } }>(
      server.url,
      `mutation { logIn(input: { username: "${bob.session.user!.username}", password: "${PASSWORD}" }) { session { user { username } } } }`,
    );
    expect(logIn.data?.logIn.session.user.username).toBe(bob.session.user!.username);
  });
});

describe("login throttling in a cluster", () => {
  it("shares the buckets through Redis: attempts spread over two gateways count together", async () => {
    const cluster = await startCluster(2, { CHAT_LOGIN_BURST: "4", CHAT_LOGIN_PER_MINUTE: "1" });
    try {
      const [first, second] = cluster.gateways.map((gateway) => gateway.url) as [string, string];
      const victim = await newUser(first, "victim");
      const outcomes: string[] = [];
      for (let i = 0; i < 12; i++) {
        const attacker = new ChatClient({ baseUrl: i % 2 === 0 ? first : second });
        const error = await attacker.accounts.logIn({ username: victim.session.user!.username, password: "wrong password", deviceName: "x" }).then(
          () => undefined,
          (failure: unknown) => failure,
        );
        outcomes.push(ErrorReason[reasonOf(error)?.reason ?? 0] ?? "none");
      }
      // Four tries in all, not four per gateway.
      expect(outcomes).toEqual([...Array<string>(4).fill("BAD_CREDENTIALS"), ...Array<string>(8).fill("RATE_LIMITED")]);
    } finally {
      await cluster.dispose();
    }
  });
});

describe("GraphQL execution budget", () => {
  it("answers EXECUTION_TIMEOUT while a resolver is still stuck", async () => {
    let release!: () => void;
    const stuck = new Promise<string>((resolve) => (release = () => resolve("late")));
    const yoga = createYoga({
      schema: createSchema({ typeDefs: "type Query { slow: String }", resolvers: { Query: { slow: () => stuck } } }),
      plugins: [documentGuardPlugin({ ...DEFAULT_DOCUMENT_LIMITS, executionBudgetMs: 50 }, { hideSuggestions: false })],
      maskedErrors: false,
    });
    try {
      const response = await yoga.fetch("http://gateway/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ slow }" }) });
      const body = (await response.json()) as { errors?: GraphQLErrorShape[] };
      expect(body.errors?.map((error) => error.extensions?.code)).toEqual(["EXECUTION_TIMEOUT"]);
    } finally {
      release();
    }
  });
});

describe("generated secrets", () => {
  it("sign with the file's text, exactly as the same text configured does", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "chat-secret-"));
    try {
      const generated = resolveSecret("", dataDir, "push-webhook-secret");
      const fileText = readFileSync(join(dataDir, "push-webhook-secret"), "utf8").trim();
      expect(fileText).toHaveLength(43);
      expect(Buffer.from(generated).equals(Buffer.from(resolveSecret(fileText, dataDir, "push-webhook-secret")))).toBe(true);
      expect(Buffer.from(resolveSecret("", dataDir, "push-webhook-secret")).equals(Buffer.from(generated))).toBe(true);
    } finally {
      removeDir(dataDir);
    }
  });
});

describe("streams end when their access token expires", () => {
  let server: ServerProcess;
  const sockets: Client[] = [];

  beforeAll(async () => {
    server = await startServer({ env: { CHAT_ACCESS_TOKEN_TTL_SECONDS: "3", CHAT_GRAPHQL_INTROSPECTION: "off" } });
  });
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.dispose()));
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("ends the device stream with TOKEN_EXPIRED; after a refresh, resuming loses nothing", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversationId = (await alice.send({ recipientUserId: bob.userId }, "first")).message!.conversationId;
    const stream = bob.openStream({ resumeFrom: new Map([[conversationId, 0n]]) });
    await stream.ready;
    const ended = await stream.closed;
    expect(reasonOf(ended)?.reason).toBe(ErrorReason.TOKEN_EXPIRED);
    expect(ended?.message).toMatch(/refresh/);

    // Sent while Bob has no stream (and Alice's token expired too).
    await alice.refresh();
    for (const text of ["second", "third"]) await alice.send({ conversationId }, text);
    await bob.refresh();
    const resumed = bob.openStream({ resumeFrom: stream.cursors });
    await resumed.ready;
    const texts: string[] = [];
    for await (const event of resumed) {
      if (event.kind === "message") texts.push(event.message.text);
      if (event.kind === "caught-up") break;
    }
    resumed.close();
    expect([stream.cursors.get(conversationId), texts]).toEqual([1n, ["second", "third"]]);
  });

  it("ends a GraphQL subscription with TOKEN_EXPIRED and hides suggestions when introspection is off", async () => {
    const carol = await newUser(server.url, "carol");
    const socket = graphqlWsClient(server.url, carol.session.accessToken);
    sockets.push(socket);
    const feed = new LiveSubscription<unknown>(socket, `subscription { messages { kind } }`);
    expect(await feed.next()).toMatchObject({ messages: { kind: "READY" } });
    const ending = await feed.nextEvent(15_000);
    expect(ending.kind === "next" && ending.result.errors?.[0]?.extensions).toMatchObject({ code: "TOKEN_EXPIRED", grpcCode: "unauthenticated" });
    expect((await feed.nextEvent()).kind).toBe("complete");

    const typo = await graphqlHttp(server.url, `{ mee { deviceId } }`);
    expect(typo.errors?.[0]?.message).toContain("Cannot query field");
    expect(typo.errors?.[0]?.message).not.toContain("Did you mean");
    // A variable's enum value is checked at execution, not validation: its suggestion goes too.
    const badRole = await graphqlHttp(
      server.url,
      `mutation($input: SetGroupMemberRoleInput!) { setGroupMemberRole(input: $input) { userErrors { code } } }`,
      { input: { groupId: "g", userId: "u", role: "ADMIM" } },
      carol.session.accessToken,
    );
    expect(badRole.errors?.[0]?.message).toContain("ADMIM");
    expect(badRole.errors?.[0]?.message).not.toContain("Did you mean");
  });
});
