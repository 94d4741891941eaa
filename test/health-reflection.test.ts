import { create, createFileRegistry, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import http2, { type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AccountsService } from "../gen/chat/v1/accounts_pb.js";
import { GroupsService } from "../gen/chat/v1/groups_pb.js";
import { MessagingService } from "../gen/chat/v1/messaging_pb.js";
import { PresenceService } from "../gen/chat/v1/presence_pb.js";
import { SyncService } from "../gen/chat/v1/sync_pb.js";
import { Health, HealthCheckRequestSchema, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionResponse } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { createHealthService, healthHandlers, registerHealth, ServingStatus, type HealthService } from "../gateway/health.js";
import { registerReflection } from "../gateway/reflection.js";
import { waitFor } from "./support/wait.js";

const BUF = resolve(import.meta.dirname, "../node_modules/.bin/buf");
const CHAT_SERVICES = [MessagingService, AccountsService, SyncService, GroupsService, PresenceService];

interface BufResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `buf curl`; an RPC error exits with the gRPC code shifted left by 3. */
function bufCurl(...args: string[]): Promise<BufResult> {
  return new Promise((done) =>
    execFile(BUF, ["curl", "--timeout", "20s", ...args], { timeout: 30_000 }, (error, stdout, stderr) =>
      done({ code: error ? Number((error as { code?: unknown }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

const codec = <D extends DescMessage>(schema: D) => ({
  serialize: (message: MessageShape<D>) => Buffer.from(toBinary(schema, message)),
  deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
});

describe("gRPC health and server reflection", () => {
  let server: http2.Http2Server;
  const sessions = new Set<Http2Session>();
  let base: string;
  let health: HealthService;

  beforeAll(async () => {
    health = createHealthService({ services: CHAT_SERVICES.map((service) => service.typeName) });
    const routes = (router: ConnectRouter) => {
      registerHealth(router, health);
      registerReflection(router, CHAT_SERVICES);
      router.service(AccountsService, {
        getMe: async () => ({
          deviceId: "d1",
          user: { userId: "u1", username: "alice", createdAt: timestampFromDate(new Date("2024-01-02T03:04:05Z")) },
        }),
      });
    };
    server = http2.createServer(connectNodeAdapter({ routes }));
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    // An HTTP/2 server's close() waits for every session, and clients keep theirs open.
    const closed = new Promise((done) => server.close(done));
    for (const session of sessions) session.destroy();
    await closed;
  });

  beforeEach(() => health.resume());

  describe("through buf curl, with no proto files", () => {
    it("lists the services by reflection", async () => {
      const result = await bufCurl("--protocol", "grpc", "--http2-prior-knowledge", base, "--list-services");
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const listed = result.stdout.trim().split("\n");
      expect(listed).toEqual(
        expect.arrayContaining([
          ...CHAT_SERVICES.map((service) => service.typeName),
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]),
      );
    });

    it("lists the methods of every service, resolving files that import others (timestamp.proto too)", async () => {
      // --list-methods takes the base URL and describes every listed service, one file_containing_symbol each.
      for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
        const result = await bufCurl("--protocol", "grpc", "--reflect-protocol", protocol, base, "--list-methods");
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
        const listed = result.stdout.trim().split("\n");
        for (const service of [...CHAT_SERVICES, Health, ServerReflection]) {
          expect(listed).toEqual(expect.arrayContaining(service.methods.map((method) => `${service.typeName}/${method.name}`)));
        }
      }
    });

    it("checks health over gRPC: SERVING, then NOT_SERVING, and NotFound for an unknown service", async () => {
      const check = (service?: string) =>
        bufCurl("--protocol", "grpc", "--http2-prior-knowledge", ...(service === undefined ? [] : ["-d", JSON.stringify({ service })]), `${base}/grpc.health.v1.Health/Check`);

      let result = await check();
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });

      health.setStatus("chat.v1.MessagingService", ServingStatus.NOT_SERVING);
      result = await check("chat.v1.MessagingService");
      expect(JSON.parse(result.stdout)).toEqual({ status: "NOT_SERVING" });
      result = await check("chat.v1.AccountsService");
      expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });

      health.setAllNotServing();
      result = await check();
      expect(JSON.parse(result.stdout)).toEqual({ status: "NOT_SERVING" });

      result = await check("no.such.Service");
      expect(result.code).toBe(5 << 3);
      expect(JSON.parse(result.stderr)).toMatchObject({ code: "not_found" });
    });

    it("checks health over the Connect protocol", async () => {
      const result = await bufCurl("--protocol", "connect", "--http2-prior-knowledge", "-d", "{}", `${base}/grpc.health.v1.Health/Check`);
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });
    });

    it("calls a chat method, with message and timestamp types resolved by reflection", async () => {
      for (const protocol of ["grpc", "connect", "grpcweb"]) {
        const result = await bufCurl("--protocol", protocol, "--http2-prior-knowledge", "-d", "{}", `${base}/chat.v1.AccountsService/GetMe`);
        expect(result.stderr).toBe("");
        expect(JSON.parse(result.stdout)).toEqual({
          deviceId: "d1",
          user: { userId: "u1", username: "alice", createdAt: "2024-01-02T03:04:05Z" },
        });
      }
    });

    it("reports an unimplemented chat method as such, not as a reflection failure", async () => {
      const result = await bufCurl("--protocol", "grpc", "-d", "{}", `${base}/chat.v1.AccountsService/LookupUsers`);
      expect(result.code).toBe(12 << 3);
      expect(JSON.parse(result.stderr)).toMatchObject({ code: "unimplemented" });
    });
  });

  it("answers a stock @grpc/grpc-js client", async () => {
    const client = new grpc.Client(base.replace("http://", ""), grpc.credentials.createInsecure());
    try {
      const request = codec(HealthCheckRequestSchema);
      const response = codec(HealthCheckResponseSchema);
      const check = (service: string) =>
        new Promise<MessageShape<typeof HealthCheckResponseSchema>>((done, fail) =>
          client.makeUnaryRequest(
            "/grpc.health.v1.Health/Check",
            request.serialize,
            response.deserialize,
            create(HealthCheckRequestSchema, { service }),
            new grpc.Metadata(),
            { deadline: Date.now() + 10_000 },
            (error, value) => (error ? fail(error) : done(value!)),
          ),
        );
      expect((await check("")).status).toBe(ServingStatus.SERVING);
      expect((await check("chat.v1.SyncService")).status).toBe(ServingStatus.SERVING);
      await expect(check("nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  describe("through a Connect client", () => {
    const transport = () => createGrpcTransport({ baseUrl: base });

    it("lists every entry", async () => {
      const client = createClient(Health, transport());
      const { statuses } = await client.list({});
      expect(Object.keys(statuses)).toEqual(expect.arrayContaining(["", ...CHAT_SERVICES.map((service) => service.typeName)]));
      expect(statuses[""]?.status).toBe(ServingStatus.SERVING);
    });

    it("watches: current status at once, then each change, until the client cancels", async () => {
      const client = createClient(Health, transport());
      const cancel = new AbortController();
      const stream = client.watch({ service: "chat.v1.GroupsService" }, { signal: cancel.signal })[Symbol.asyncIterator]();
      expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
      health.setStatus("chat.v1.GroupsService", ServingStatus.NOT_SERVING);
      expect((await stream.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
      health.setStatus("chat.v1.AccountsService", ServingStatus.NOT_SERVING); // another entry: no message
      health.setStatus("chat.v1.GroupsService", ServingStatus.SERVING);
      expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
      cancel.abort();
      await expect(stream.next()).rejects.toMatchObject({ code: 1 /* Canceled */ });
    });

    it("watches an unknown service as SERVICE_UNKNOWN until it appears", async () => {
      const client = createClient(Health, transport());
      const cancel = new AbortController();
      const stream = client.watch({ service: "later.v1.Service" }, { signal: cancel.signal })[Symbol.asyncIterator]();
      expect((await stream.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
      health.setStatus("later.v1.Service", ServingStatus.SERVING);
      expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
      cancel.abort();
    });

    it("serves descriptors that build a complete registry, over v1 and v1alpha", async () => {
      for (const service of [ServerReflection, ServerReflectionV1Alpha]) {
        const client = createClient(service, transport());
        async function* ask() {
          yield { host: "h", messageRequest: { case: "fileContainingSymbol", value: "chat.v1.PresenceService" } } as const;
          yield { host: "h", messageRequest: { case: "fileContainingSymbol", value: "chat.v1.MessagingService.SendMessage" } } as const;
          yield { host: "h", messageRequest: { case: "fileContainingSymbol", value: "chat.v1.No" } } as const;
          yield { host: "h", messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" } } as const;
          yield { host: "h", messageRequest: { case: "allExtensionNumbersOfType", value: "chat.v1.User" } } as const;
          yield { host: "h", messageRequest: { case: "fileContainingExtension", value: { containingType: "chat.v1.User", extensionNumber: 100 } } } as const;
        }
        const answers: ServerReflectionResponse[] = [];
        // v1alpha messages have the same shape; only the $typeName strings differ.
        for await (const answer of client.serverReflectionInfo(ask())) answers.push(answer as unknown as ServerReflectionResponse);
        expect(answers).toHaveLength(6);
        expect(answers.every((answer) => answer.validHost === "h")).toBe(true);
        expect(answers[1]?.originalRequest?.messageRequest.value).toBe("chat.v1.MessagingService.SendMessage");

        const [presence, method, unknown, timestamp, extensionNumbers, extension] = answers.map((answer) => answer.messageResponse);
        if (presence?.case !== "fileDescriptorResponse") throw new Error(`unexpected ${presence?.case}`);
        const files = presence.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
        expect(files[0]?.name).toBe("chat/v1/presence.proto");
        expect(files.map((file) => file.name).sort()).toEqual(
          ["chat/v1/presence.proto", "chat/v1/messaging.proto", "chat/v1/errors.proto", "chat/v1/types.proto", "google/protobuf/timestamp.proto"].sort(),
        );
        // As a client does: the asked-for file, its imports resolved from the same answer.
        const registry = createFileRegistry(files[0]!, (name) => files.find((file) => file.name === name));
        expect(registry.getService("chat.v1.PresenceService")).toBeDefined();
        expect(registry.getMessage("google.protobuf.Timestamp")).toBeDefined();

        expect(method?.case === "fileDescriptorResponse" && fromBinary(FileDescriptorProtoSchema, method.value.fileDescriptorProto[0]!).name).toBe(
          "chat/v1/messaging.proto",
        );
        expect(unknown).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
        expect(timestamp?.case === "fileDescriptorResponse" && timestamp.value.fileDescriptorProto).toHaveLength(1);
        expect(extensionNumbers).toMatchObject({ case: "allExtensionNumbersResponse", value: { baseTypeName: "chat.v1.User", extensionNumber: [] } });
        expect(extension).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
      }
    });
  });

  it("on shutdown, tells watchers NOT_SERVING, ends their streams and ignores later updates", async () => {
    const shutdown = new AbortController();
    const draining = createHealthService({ services: ["a.v1.A"], shutdown: shutdown.signal });
    const call = new AbortController();
    const watch = healthHandlers(draining).watch(create(HealthCheckRequestSchema, { service: "a.v1.A" }), { signal: call.signal } as HandlerContext);
    const seen: ServingStatus[] = [];
    const consumed = (async () => {
      for await (const message of watch as AsyncIterable<MessageShape<typeof HealthCheckResponseSchema>>) seen.push(message.status);
    })();
    // The watch has answered with the current status before the shutdown begins.
    await waitFor(() => seen.length === 1, 5_000, () => `the watch's first status (${JSON.stringify(seen)})`);
    shutdown.abort();
    await consumed;
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    draining.setStatus("a.v1.A", ServingStatus.SERVING);
    expect(draining.getStatus("a.v1.A")).toBe(ServingStatus.NOT_SERVING);
  });
});
