import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AccountsService } from "../gen/chat/v1/accounts_pb.js";
import { ChatClient } from "../clients/sdk/index.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, PASSWORD, uniqueName } from "./support/users.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");
const BUF = join(ROOT, "node_modules/.bin/buf");

describe("the gateway's one port", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.kill("SIGTERM");
    removeDir(server.dataDir);
  });

  it("answers /healthz and /readyz over HTTP/1.1", async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect((await fetch(`${server.url}/nothing-here`)).status).toBe(404);
  });

  it("serves unary Connect calls as JSON over HTTP/1.1", async () => {
    const username = uniqueName("http1");
    const response = await fetch(`${server.url}/chat.v1.AccountsService/SignUp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: PASSWORD, deviceName: "curl" }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { session: { user: { username: string }; accessToken: string } };
    expect(body.session.user.username).toBe(username);
    const me = await fetch(`${server.url}/chat.v1.AccountsService/GetMe`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${body.session.accessToken}` },
      body: "{}",
    });
    expect(((await me.json()) as { user: { username: string } }).user.username).toBe(username);
    const denied = await fetch(`${server.url}/chat.v1.AccountsService/GetMe`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { code: string }).code).toBe("unauthenticated");
  });

  it("serves the gRPC-web protocol", async () => {
    const alice = await newUser(server.url, "alice", "grpc-web");
    const bob = await newUser(server.url, "bob", "grpc-web");
    const sent = await alice.send({ recipientUserId: bob.userId }, "over grpc-web");
    const page = await bob.history(sent.message!.conversationId);
    expect(page.messages.map((message) => message.text)).toEqual(["over grpc-web"]);
  });

  it("lets buf curl list and call services through reflection, with no proto files", async () => {
    const base = ["curl", "--http2-prior-knowledge", "--protocol", "grpc"];
    const listed = await run(BUF, [...base, "--list-services", server.url]);
    for (const name of ["chat.v1.AccountsService", "chat.v1.MessagingService", "grpc.health.v1.Health"]) expect(listed.stdout).toContain(name);
    const health = await run(BUF, [...base, `${server.url}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(health.stdout)).toEqual({ status: "SERVING" });

    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    await alice.send({ recipientUserId: bob.userId }, "seen by buf");
    const conversation = await alice.openDirect(bob.userId);
    const history = await run(BUF, [
      ...base,
      "-H",
      `Authorization: Bearer ${bob.session.accessToken}`,
      "-d",
      JSON.stringify({ conversationId: conversation.conversationId, limit: 10 }),
      `${server.url}/chat.v1.MessagingService/GetHistory`,
    ]);
    const page = JSON.parse(history.stdout) as { messages: { text: string; seq: string }[] };
    expect(page.messages.map((message) => [message.text, message.seq])).toEqual([["seen by buf", "1"]]);
  });
});

describe("TLS", () => {
  it("serves h2 and HTTP/1.1 over TLS on one port when a certificate is configured", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chat-tls-"));
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]);
    expect(made.status, made.stderr.toString()).toBe(0);
    const server = await startServer({ dataDir: dir, env: { CHAT_TLS_CERT: cert, CHAT_TLS_KEY: key } });
    try {
      const url = `https://127.0.0.1:${server.port}`;
      const ca = readFileSync(cert);
      const accounts = createClient(AccountsService, createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions: { ca } }));
      const signed = await accounts.signUp({ username: uniqueName("tls"), password: PASSWORD });
      expect(signed.session?.accessToken).toBeTruthy();
      const overHttp1 = await new Promise<number>((done, fail) =>
        https.get(`${url}/healthz`, { ca }, (response) => done(response.statusCode ?? 0)).on("error", fail),
      );
      expect(overHttp1).toBe(200);
    } finally {
      await server.kill("SIGTERM");
      removeDir(dir);
    }
  });
});

describe("configuration", () => {
  it("stops with a message naming the setting, the value and what is accepted", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "gateway/main.ts"], {
      cwd: ROOT,
      env: { ...process.env, CHAT_PORT: "eighty" },
      encoding: "utf8",
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('CHAT_PORT="eighty" is not valid: expected an integer 0-65535');
  });

  it("lists every setting with its default under --help", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "gateway/main.ts", "--help"], { cwd: ROOT, encoding: "utf8" });
    expect(result.status).toBe(0);
    for (const name of ["CHAT_PORT", "CHAT_STORE", "CHAT_TOKEN_SECRET", "CHAT_TLS_CERT", "CHAT_PASSWORD_COST"]) expect(result.stdout).toContain(name);
    expect(result.stdout).toContain("default: 8080");
  });
});

describe("drain", () => {
  it("tells connected devices to reconnect elsewhere, then exits cleanly", async () => {
    const server = await startServer();
    try {
      const alice = await newUser(server.url, "alice");
      const stream = alice.openStream();
      await stream.ready;
      const exit = server.kill("SIGTERM");
      const frames: string[] = [];
      for await (const event of stream) if (event.kind === "frame") frames.push(event.frame.frame.case ?? "");
      expect(frames).toContain("goAway");
      expect(await stream.closed).toBeUndefined();
      expect(await exit).toBe(0);
      const reconnect = new ChatClient({ baseUrl: server.url });
      await expect(reconnect.logIn(alice.session.user!.username, PASSWORD)).rejects.toThrow();
    } finally {
      await server.kill("SIGKILL");
      removeDir(server.dataDir);
    }
  });
});
