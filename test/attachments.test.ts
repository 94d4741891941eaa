import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { AttachmentsService } from "../gen/chat/v1/attachments_pb.js";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import type { ChatClient } from "../clients/sdk/index.js";
import { expectChatError } from "./support/errors.js";
import { serviceClient, sleep } from "./support/push-receiver.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser } from "./support/users.js";

const MAX_BYTES = 1000;
const URL_TTL_MS = 3000;

describe("attachments through pre-signed URLs", () => {
  let server: ServerProcess;
  let alice: ChatClient;
  let bob: ChatClient;
  let conversationId: string;

  beforeAll(async () => {
    server = await startServer({
      env: { CHAT_UPLOAD_MAX_BYTES: String(MAX_BYTES), CHAT_UPLOAD_URL_TTL_MS: String(URL_TTL_MS), CHAT_UPLOAD_CONTENT_TYPES: "image/*,text/plain" },
    });
    alice = await newUser(server.url, "alice");
    bob = await newUser(server.url, "bob");
    conversationId = (await alice.openDirect(bob.userId)).conversationId;
  });
  afterAll(async () => {
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  const blobsDir = () => join(server.dataDir, "blobs");
  /** Nothing of the attachment on disk: no blob, no metadata, no partial upload. */
  function expectNothingStored(attachmentId: string): void {
    const objects = existsSync(join(blobsDir(), "objects")) ? readdirSync(join(blobsDir(), "objects")) : [];
    expect(objects.filter((name) => name.startsWith(attachmentId))).toEqual([]);
    expect(existsSync(join(blobsDir(), "incoming")) ? readdirSync(join(blobsDir(), "incoming")) : []).toEqual([]);
  }

  async function createUpload(client: ChatClient, size: number, contentType = "image/png", fileName = "cat.png") {
    return serviceClient(AttachmentsService, client).createUpload({ conversationId, contentType, sizeBytes: BigInt(size), fileName });
  }

  async function put(url: string, headers: Record<string, string>, body: BodyInit, init: RequestInit = {}) {
    const response = await fetch(url, { method: "PUT", headers, body, ...init });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as { reason?: string; message?: string }) : {} };
  }

  const bytes = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => i % 251));

  it("3. uploads and downloads with valid URLs; a message carries the reference through history", async () => {
    const file = bytes(700);
    const upload = await createUpload(alice, file.length, "image/png", "kitten photo é.png");
    expect(upload.headers).toEqual({ "content-type": "image/png" });
    expect(upload.uploadUrl.startsWith(`${server.url}/blobs/${upload.attachmentId}?`)).toBe(true);
    const stored = await put(upload.uploadUrl, upload.headers, file);
    expect(stored.status).toBe(201);

    const sent = await alice.messaging.sendMessage({
      clientMsgId: `att-${upload.attachmentId}`,
      to: { case: "conversationId", value: conversationId },
      text: "",
      attachmentIds: [upload.attachmentId],
    });
    const expected = { attachmentId: upload.attachmentId, contentType: "image/png", sizeBytes: 700n, fileName: "kitten photo é.png" };
    expect(sent.message!.attachments).toMatchObject([expected]);
    const history = await bob.history(conversationId);
    expect(history.messages.at(-1)!.attachments).toMatchObject([expected]);

    const download = await serviceClient(AttachmentsService, bob).createDownload({ attachmentId: upload.attachmentId });
    expect(download).toMatchObject({ contentType: "image/png", sizeBytes: 700n, fileName: "kitten photo é.png" });
    const response = await fetch(download.downloadUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("content-disposition")).toContain(`filename*=UTF-8''${encodeURIComponent("kitten photo é.png")}`);
    expect(Buffer.from(await response.arrayBuffer()).equals(file)).toBe(true);

    // A URL is good for one upload.
    expect((await put(upload.uploadUrl, upload.headers, file)).status).toBe(409);
  });

  it("3. refuses an expired upload URL, storing nothing", async () => {
    const upload = await createUpload(alice, 10);
    await sleep(URL_TTL_MS + 300);
    const refused = await put(upload.uploadUrl, upload.headers, bytes(10));
    expect(refused).toMatchObject({ status: 403, body: { reason: "SIGNED_URL_EXPIRED" } });
    expect(refused.body.message).toMatch(/ask for a new one/);
    expectNothingStored(upload.attachmentId);
    await expectChatError(
      serviceClient(AttachmentsService, alice).createDownload({ attachmentId: upload.attachmentId }),
      Code.NotFound,
      ErrorReason.ATTACHMENT_NOT_FOUND,
    );
  });

  it("3. refuses a tampered upload URL (size, type, expiry or key changed), storing nothing", async () => {
    const upload = await createUpload(alice, 10);
    const url = new URL(upload.uploadUrl);
    const variants = [
      ["size", "1000"],
      ["ct", "text/plain"],
      ["exp", String(Date.now() + 3_600_000)],
      ["sig", "x".repeat(43)],
    ] as const;
    for (const [param, value] of variants) {
      const tampered = new URL(url);
      tampered.searchParams.set(param, value);
      const refused = await put(tampered.toString(), param === "ct" ? { "content-type": "text/plain" } : upload.headers, bytes(10));
      expect(refused, param).toMatchObject({ status: 403, body: { reason: "SIGNED_URL_INVALID" } });
    }
    const otherKey = new URL(url);
    otherKey.pathname = "/blobs/a_someoneelse";
    expect(await put(otherKey.toString(), upload.headers, bytes(10))).toMatchObject({ status: 403, body: { reason: "SIGNED_URL_INVALID" } });
    expectNothingStored(upload.attachmentId);
    expectNothingStored("a_someoneelse");

    // Downloads are signed too.
    const good = await createUpload(alice, 5);
    expect((await put(good.uploadUrl, good.headers, bytes(5))).status).toBe(201);
    const download = new URL((await serviceClient(AttachmentsService, alice).createDownload({ attachmentId: good.attachmentId })).downloadUrl);
    download.searchParams.set("exp", String(Date.now() + 3_600_000));
    const response = await fetch(download);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ reason: "SIGNED_URL_INVALID" });
  });

  it("3. refuses oversize uploads: at CreateUpload, by Content-Length, and counted while streaming, storing nothing", async () => {
    await expectChatError(createUpload(alice, MAX_BYTES + 1), Code.InvalidArgument, ErrorReason.ATTACHMENT_TOO_LARGE);

    const upload = await createUpload(alice, 100);
    const declared = await put(upload.uploadUrl, upload.headers, bytes(101));
    expect(declared).toMatchObject({ status: 413, body: { reason: "ATTACHMENT_TOO_LARGE" } });
    expectNothingStored(upload.attachmentId);

    // No Content-Length (chunked): the gateway counts and stops at the first byte too many.
    const chunks = [bytes(60), bytes(60)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const streamed = await put(upload.uploadUrl, upload.headers, stream, { duplex: "half" } as RequestInit);
    expect(streamed).toMatchObject({ status: 413, body: { reason: "ATTACHMENT_TOO_LARGE" } });
    expectNothingStored(upload.attachmentId);

    const short = await put(upload.uploadUrl, upload.headers, bytes(99));
    expect(short).toMatchObject({ status: 400, body: { reason: "INVALID_ARGUMENT" } });
    expectNothingStored(upload.attachmentId);
  });

  it("3. refuses wrong content types: at CreateUpload and at the upload, storing nothing", async () => {
    await expectChatError(createUpload(alice, 10, "application/x-msdownload", "setup.exe"), Code.InvalidArgument, ErrorReason.CONTENT_TYPE_NOT_ALLOWED);
    const upload = await createUpload(alice, 10, "image/png");
    const refused = await put(upload.uploadUrl, { "content-type": "text/html" }, bytes(10));
    expect(refused).toMatchObject({ status: 415, body: { reason: "CONTENT_TYPE_NOT_ALLOWED" } });
    expect(refused.body.message).toContain("send Content-Type: image/png");
    expectNothingStored(upload.attachmentId);
  });

  it("lets only members upload and download, and a message carry only the sender's own uploads", async () => {
    const carol = await newUser(server.url, "carol");
    await expectChatError(createUpload(carol, 10), Code.PermissionDenied, ErrorReason.NOT_A_MEMBER);
    const upload = await createUpload(alice, 4);
    expect((await put(upload.uploadUrl, upload.headers, bytes(4))).status).toBe(201);
    await expectChatError(
      serviceClient(AttachmentsService, carol).createDownload({ attachmentId: upload.attachmentId }),
      Code.NotFound,
      ErrorReason.ATTACHMENT_NOT_FOUND,
    );
    // Bob may not send Alice's upload as his own, nor an upload that never finished.
    const unfinished = await createUpload(bob, 4);
    for (const attachmentId of [upload.attachmentId, unfinished.attachmentId]) {
      await expectChatError(
        bob.messaging.sendMessage({ clientMsgId: `bad-${attachmentId}`, to: { case: "conversationId", value: conversationId }, text: "look", attachmentIds: [attachmentId] }),
        Code.NotFound,
        ErrorReason.ATTACHMENT_NOT_FOUND,
      );
    }
  });
});

// The same flow with the cluster blob store, when an S3-compatible server is given (see
// backends/blob-s3/blob-s3.test.ts for the variables); none installs in CI.
describe.runIf(Boolean(process.env.CHAT_TEST_S3))("attachments through an S3 blob store", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({
      env: {
        CHAT_BLOB_STORE: process.env.CHAT_TEST_S3!,
        CHAT_S3_ACCESS_KEY_ID: process.env.CHAT_TEST_S3_ACCESS_KEY_ID ?? "test",
        CHAT_S3_SECRET_ACCESS_KEY: process.env.CHAT_TEST_S3_SECRET_ACCESS_KEY ?? "test",
      },
    });
  });
  afterAll(async () => {
    await server?.kill("SIGTERM");
    if (server) removeDir(server.dataDir);
  });

  it("3. uploads to a pre-signed S3 URL, sends the reference, downloads from a pre-signed URL", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const conversationId = (await alice.openDirect(bob.userId)).conversationId;
    const file = Buffer.from("an S3 object");
    const upload = await serviceClient(AttachmentsService, alice).createUpload({ conversationId, contentType: "text/plain", sizeBytes: BigInt(file.length), fileName: "note.txt" });
    expect(upload.uploadUrl).toContain("X-Amz-Signature=");
    expect(upload.headers).toMatchObject({ "content-type": "text/plain", "x-amz-meta-conversation": conversationId });
    const stored = await fetch(upload.uploadUrl, { method: "PUT", headers: upload.headers, body: file });
    expect(stored.status, await stored.text()).toBe(200);
    await alice.messaging.sendMessage({ clientMsgId: `s3-${upload.attachmentId}`, to: { case: "conversationId", value: conversationId }, text: "a note", attachmentIds: [upload.attachmentId] });
    expect((await bob.history(conversationId)).messages.at(-1)!.attachments).toMatchObject([
      { attachmentId: upload.attachmentId, contentType: "text/plain", sizeBytes: BigInt(file.length), fileName: "note.txt" },
    ]);
    const download = await serviceClient(AttachmentsService, bob).createDownload({ attachmentId: upload.attachmentId });
    const response = await fetch(download.downloadUrl);
    expect(Buffer.from(await response.arrayBuffer()).equals(file)).toBe(true);
  });
});
