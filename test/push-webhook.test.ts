import Database from "better-sqlite3";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { PushService } from "../gen/chat/v1/push_pb.js";
import type { ChatClient } from "../clients/sdk/index.js";
import { expectChatError } from "./support/errors.js";
import { serviceClient, startReceiver, verifyWebhookSignature, type ReceivedRequest, type Receiver } from "./support/push-receiver.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, otherDevice } from "./support/users.js";
import { waitFor } from "./support/wait.js";

const SECRET = "webhook-secret-for-tests-0123456789abcdef";

interface JobRow {
  state: string;
  attempts: number;
  conversation_id: string;
}

/** The push jobs stored for a device, oldest first: everything the gateway will ever try for it. */
function jobsOf(dataDir: string, deviceId: string): JobRow[] {
  const db = new Database(join(dataDir, "push.db"), { readonly: true });
  try {
    return db.prepare("SELECT state, attempts, conversation_id FROM push_jobs WHERE device_id = ? ORDER BY created_at, job_id").all(deviceId) as JobRow[];
  } finally {
    db.close();
  }
}

/** Waits until the device's jobs are all finished (sent, dead or cancelled): no further try can come. */
async function settledJobs(dataDir: string, deviceId: string): Promise<JobRow[]> {
  let jobs: JobRow[] = [];
  await waitFor(
    () => (jobs = jobsOf(dataDir, deviceId)).length > 0 && jobs.every((job) => job.state !== "pending"),
    15_000,
    () => `the push jobs of ${deviceId} to finish (${JSON.stringify(jobs)})`,
  );
  return jobs;
}

interface Payload {
  type: string;
  id: string;
  device_id: string;
  conversation_id: string;
  seq: string;
  preview?: string;
  collapse_key: string;
}
const payloadOf = (request: ReceivedRequest) => JSON.parse(request.body.toString("utf8")) as Payload;

describe("push notifications over a signed webhook", () => {
  let server: ServerProcess;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startServer({
      env: {
        CHAT_PUSH_WEBHOOK_SECRET: SECRET,
        CHAT_PUSH_RETRY_MAX_ATTEMPTS: "4",
        CHAT_PUSH_RETRY_INITIAL_MS: "200",
        CHAT_PUSH_RETRY_MAX_MS: "400",
        CHAT_PUSH_POLL_MS: "50",
      },
    });
  });
  afterAll(async () => {
    await server?.kill("SIGTERM");
    await receiver?.close();
    if (server) removeDir(server.dataDir);
  });

  async function registerWebhook(client: ChatClient, path: string): Promise<void> {
    await serviceClient(PushService, client).registerPushTarget({ target: { case: "webhook", value: { url: `${receiver.url}${path}` } } });
  }

  it("1. sends a signed push, without the text, to a device that is not connected, and none to one that is", async () => {
    const alice = await newUser(server.url, "alice");
    const bobPhone = await newUser(server.url, "bob");
    const bobLaptop = await otherDevice(bobPhone);
    await registerWebhook(bobPhone, "/plain/phone");
    await registerWebhook(bobLaptop, "/plain/laptop");
    const laptop = bobLaptop.openStream();
    await laptop.ready;

    const sent = await alice.send({ recipientUserId: bobPhone.userId }, "the secret plan");
    const push = await receiver.waitFor((r) => r.path === "/plain/phone");
    expect(verifyWebhookSignature(SECRET, push.headers["x-chat-signature"], push.body)).toBe(true);
    expect(verifyWebhookSignature("another-secret-another-secret-123", push.headers["x-chat-signature"], push.body)).toBe(false);
    expect(push.headers["content-type"]).toBe("application/json");
    const payload = payloadOf(push);
    expect(payload).toMatchObject({
      type: "message",
      device_id: bobPhone.deviceId,
      conversation_id: sent.message!.conversationId,
      seq: "1",
      collapse_key: sent.message!.conversationId,
    });
    expect(push.headers["x-chat-idempotency-key"]).toBe(payload.id);
    expect(payload.preview).toBeUndefined();
    expect(push.body.toString()).not.toContain("secret plan");
    // The laptop got the message on its stream instead.
    expect((await laptop.takeMessages(1))[0]!.text).toBe("the secret plan");
    // A message's pushes are queued together, and the phone's came from them: the laptop has none.
    expect(jobsOf(server.dataDir, bobLaptop.deviceId)).toEqual([]);
    expect(receiver.requests.filter((r) => r.path === "/plain/laptop")).toEqual([]);
    laptop.close();
  });

  it("1. retries a failing receiver with the same idempotency key: two failures then one accepted delivery", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    await registerWebhook(bob, "/flaky");
    receiver.answer = ({ path, previous }) => (path === "/flaky" && previous.length < 2 ? 500 : 200);

    await alice.send({ recipientUserId: bob.userId }, "hello");
    await receiver.waitFor((r) => r.path === "/flaky" && r.status === 200);
    // Sent and finished: no try can follow.
    expect(await settledJobs(server.dataDir, bob.deviceId)).toEqual([{ state: "sent", attempts: 3, conversation_id: expect.any(String) }]);
    const tries = receiver.requests.filter((r) => r.path === "/flaky");
    expect(tries.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(tries.map((r) => r.headers["x-chat-delivery-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(tries.map((r) => r.headers["x-chat-idempotency-key"])).size).toBe(1);
    for (const request of tries) expect(verifyWebhookSignature(SECRET, request.headers["x-chat-signature"], request.body)).toBe(true);
    expect(tries.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it("keeps a dead letter after the last failed try", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    await registerWebhook(bob, "/down");
    receiver.answer = ({ path }) => (path === "/down" ? 503 : 200);

    await alice.send({ recipientUserId: bob.userId }, "hello");
    await waitFor(
      () => server.logs.some((line) => line.event === "push_dead_lettered" && line.deviceId === bob.deviceId),
      15_000,
      () => `a push_dead_lettered log line for bob's device (${receiver.requests.filter((r) => r.path === "/down").length} tries so far)`,
    );
    const tries = receiver.requests.filter((r) => r.path === "/down");
    expect(tries.map((r) => r.headers["x-chat-delivery-attempt"])).toEqual(["1", "2", "3", "4"]);
    const db = new Database(join(server.dataDir, "push.db"), { readonly: true });
    try {
      const row = db.prepare("SELECT state, attempts, last_error FROM push_jobs WHERE device_id = ?").get(bob.deviceId);
      expect(row).toEqual({ state: "dead", attempts: 4, last_error: "the webhook answered HTTP 503" });
    } finally {
      db.close();
    }
  });

  it("puts the text in the push only for a user who allowed previews", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    await registerWebhook(bob, "/preview");
    await serviceClient(PushService, bob).setPushPreviews({ enabled: true });
    expect((await serviceClient(PushService, bob).getPushSettings({})).previews).toBe(true);

    await alice.send({ recipientUserId: bob.userId }, "see you at 8");
    const push = await receiver.waitFor((r) => r.path === "/preview");
    expect(payloadOf(push).preview).toBe("see you at 8");
  });

  it("sends nothing for a muted conversation", async () => {
    const alice = await newUser(server.url, "alice");
    const carol = await newUser(server.url, "carol");
    const bob = await newUser(server.url, "bob");
    await registerWebhook(bob, "/muted");
    const muted = await bob.openDirect(alice.userId);
    await serviceClient(PushService, bob).setConversationMuted({ conversationId: muted.conversationId, muted: true });
    expect((await serviceClient(PushService, bob).getPushSettings({})).mutedConversationIds).toEqual([muted.conversationId]);
    await expectChatError(
      serviceClient(PushService, carol).setConversationMuted({ conversationId: muted.conversationId, muted: true }),
      Code.PermissionDenied,
      ErrorReason.NOT_A_MEMBER,
    );

    await alice.send({ conversationId: muted.conversationId }, "you will not hear of this");
    const other = await carol.send({ recipientUserId: bob.userId }, "but of this");
    const push = await receiver.waitFor((r) => r.path === "/muted");
    expect(payloadOf(push).conversation_id).toBe(other.message!.conversationId);
    // The muted message's pushes would have been queued before Carol's: Bob's device has that one job only.
    expect(jobsOf(server.dataDir, bob.deviceId).map((job) => job.conversation_id)).toEqual([other.message!.conversationId]);
    expect(receiver.requests.filter((r) => r.path === "/muted")).toHaveLength(1);
  });

  it("withdraws a pending push when the message is read on another device, and clears one already shown", async () => {
    const alice = await newUser(server.url, "alice");
    const bobPhone = await newUser(server.url, "bob");
    const bobLaptop = await otherDevice(bobPhone);
    await registerWebhook(bobPhone, "/withdraw");
    let phoneUp = false;
    receiver.answer = ({ path }) => (path === "/withdraw" && !phoneUp ? 503 : 200);

    const first = await alice.send({ recipientUserId: bobPhone.userId }, "one");
    const conversationId = first.message!.conversationId;
    await receiver.waitFor((r) => r.path === "/withdraw");
    // The push failed once and waits for its retry; the laptop reads the message meanwhile.
    await bobLaptop.sync.markRead({ conversationId, seq: 1n });
    phoneUp = true;
    // Withdrawn before its retry: the job is cancelled, so that retry never happens.
    expect(await settledJobs(server.dataDir, bobPhone.deviceId)).toEqual([{ state: "cancelled", attempts: 1, conversation_id: conversationId }]);
    expect(receiver.requests.filter((r) => r.path === "/withdraw").map((r) => r.status)).toEqual([503]);

    // A push that was shown is taken down by a "clear" with the same collapse key.
    await alice.send({ conversationId }, "two");
    const shown = await receiver.waitFor((r) => r.path === "/withdraw" && r.status === 200);
    expect(payloadOf(shown)).toMatchObject({ type: "message", seq: "2" });
    await bobLaptop.sync.markRead({ conversationId, seq: 2n });
    const clear = await receiver.waitFor((r) => r.path === "/withdraw" && payloadOf(r).type === "clear");
    expect(payloadOf(clear)).toMatchObject({ type: "clear", seq: "2", collapse_key: conversationId, device_id: bobPhone.deviceId });
    expect(verifyWebhookSignature(SECRET, clear.headers["x-chat-signature"], clear.body)).toBe(true);
  });

  it("refuses a target that is not an http(s) URL", async () => {
    const bob = await newUser(server.url, "bob");
    await expectChatError(
      serviceClient(PushService, bob).registerPushTarget({ target: { case: "webhook", value: { url: "file:///etc/passwd" } } }),
      Code.InvalidArgument,
      ErrorReason.PUSH_TARGET_INVALID,
    );
    await expectChatError(serviceClient(PushService, bob).registerPushTarget({}), Code.InvalidArgument, ErrorReason.PUSH_TARGET_INVALID);
  });
});

describe("a push job survives a gateway restart", () => {
  it("1. delivers after the gateway was killed between two tries", async () => {
    const receiver = await startReceiver();
    // The retry waits longer than the kill and restart take, so the second try is the new process's.
    const env = { CHAT_PUSH_WEBHOOK_SECRET: SECRET, CHAT_PUSH_RETRY_INITIAL_MS: "3000", CHAT_PUSH_POLL_MS: "100", CHAT_PUSH_TIMEOUT_MS: "2000" };
    let server = await startServer({ env });
    const dataDir = server.dataDir;
    try {
      const alice = await newUser(server.url, "alice");
      const bob = await newUser(server.url, "bob");
      await serviceClient(PushService, bob).registerPushTarget({ target: { case: "webhook", value: { url: `${receiver.url}/restart` } } });
      receiver.answer = ({ previous }) => (previous.length === 0 ? 500 : 200);

      await alice.send({ recipientUserId: bob.userId }, "still there?");
      await receiver.waitFor((r) => r.path === "/restart");
      // Killed once the failed try is on record (had it died before, the job's lease would bring it back later).
      await waitFor(() => server.logs.some((line) => line.event === "push_retry"), 10_000, "the failed try on record (a push_retry log line)");
      await server.kill("SIGKILL");
      server = await startServer({ env, dataDir });

      const delivered = await receiver.waitFor((r) => r.status === 200, 20_000);
      expect((await settledJobs(dataDir, bob.deviceId)).map((job) => job.state)).toEqual(["sent"]);
      expect(receiver.requests.map((r) => [r.status, r.headers["x-chat-delivery-attempt"]])).toEqual([
        [500, "1"],
        [200, "2"],
      ]);
      expect(delivered.headers["x-chat-idempotency-key"]).toBe(receiver.requests[0]!.headers["x-chat-idempotency-key"]);
      expect(verifyWebhookSignature(SECRET, delivered.headers["x-chat-signature"], delivered.body)).toBe(true);
      expect(server.logs.some((line) => line.event === "push_sent")).toBe(true);
    } finally {
      await server.kill("SIGTERM");
      await receiver.close();
      removeDir(dataDir);
    }
  });
});
