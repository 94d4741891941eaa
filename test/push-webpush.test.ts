import { createDecipheriv, createECDH, createHmac, createPublicKey, randomBytes, verify } from "node:crypto";
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { ErrorReason } from "../gen/chat/v1/errors_pb.js";
import { PushService } from "../gen/chat/v1/push_pb.js";
import type { ChatClient } from "../clients/sdk/index.js";
import { expectChatError } from "./support/errors.js";
import { serviceClient, startReceiver, type Receiver } from "./support/push-receiver.js";
import { removeDir, startServer, type ServerProcess } from "./support/server-process.js";
import { newUser, otherDevice } from "./support/users.js";
import { waitFor } from "./support/wait.js";

const hmac = (key: Buffer, ...data: Buffer[]) => {
  const mac = createHmac("sha256", key);
  for (const part of data) mac.update(part);
  return mac.digest();
};

/** What a browser holds for one subscription: its P-256 key pair and auth secret (RFC 8291). */
function browserSubscription() {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return { ecdh, publicKey: ecdh.getPublicKey(), auth: randomBytes(16) };
}

/** RFC 8291 + RFC 8188 (aes128gcm, one record), as the user agent decrypts a push. */
function decryptPush(body: Buffer, subscription: ReturnType<typeof browserSubscription>): string {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const keyIdLength = body[20]!;
  const serverPublicKey = body.subarray(21, 21 + keyIdLength);
  const record = body.subarray(21 + keyIdLength);
  expect(keyIdLength).toBe(65);
  expect(record.length).toBeLessThanOrEqual(recordSize);
  const ecdhSecret = subscription.ecdh.computeSecret(serverPublicKey);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), subscription.publicKey, serverPublicKey]);
  const ikm = hmac(hmac(subscription.auth, ecdhSecret), keyInfo, Buffer.from([1]));
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from("Content-Encoding: aes128gcm\0"), Buffer.from([1])).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from("Content-Encoding: nonce\0"), Buffer.from([1])).subarray(0, 12);
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  expect(padded[end]).toBe(2);
  return padded.subarray(0, end).toString("utf8");
}

/** Checks `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): an ES256 JWT signed by the key in k. */
function verifyVapid(header: string | undefined, endpoint: string): { key: string; claims: Record<string, unknown> } {
  const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header ?? "");
  expect(match, `Authorization header: ${header}`).not.toBeNull();
  const [, jwt, key] = match!;
  const [head, payload, signature] = jwt!.split(".");
  expect(JSON.parse(Buffer.from(head!, "base64url").toString())).toMatchObject({ typ: "JWT", alg: "ES256" });
  const point = Buffer.from(key!, "base64url");
  const publicKey = createPublicKey({
    key: { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33, 65).toString("base64url") },
    format: "jwk",
  });
  const signed = verify("sha256", Buffer.from(`${head}.${payload}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(signature!, "base64url"));
  expect(signed, "the VAPID JWT signature verifies with the key in k=").toBe(true);
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>;
  expect(claims.aud).toBe(new URL(endpoint).origin);
  expect(claims.exp as number).toBeGreaterThan(Date.now() / 1000);
  return { key: key!, claims };
}

describe("push notifications over Web Push", () => {
  let server: ServerProcess;
  let pushService: Receiver;

  beforeAll(async () => {
    pushService = await startReceiver();
    pushService.answer = () => 201;
    server = await startServer({ env: { CHAT_PUSH_POLL_MS: "50", CHAT_VAPID_SUBJECT: "mailto:ops@chat.test" } });
  });
  afterAll(async () => {
    await server?.kill("SIGTERM");
    await pushService?.close();
    if (server) removeDir(server.dataDir);
  });

  async function subscribe(client: ChatClient, path: string) {
    const subscription = browserSubscription();
    const endpoint = `${pushService.url}${path}`;
    await serviceClient(PushService, client).registerPushTarget({
      target: { case: "webPush", value: { endpoint, p256dh: subscription.publicKey.toString("base64url"), auth: subscription.auth.toString("base64url") } },
    });
    return { subscription, endpoint };
  }

  it("2. delivers a VAPID-signed, encrypted push that the subscriber decrypts, without the text", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const { subscription, endpoint } = await subscribe(bob, "/wp/bob");
    const { vapidPublicKey } = await serviceClient(PushService, bob).getPushSettings({});

    const sent = await alice.send({ recipientUserId: bob.userId }, "for your eyes only");
    const push = await pushService.waitFor((r) => r.path === "/wp/bob");
    expect(push.headers["content-encoding"]).toBe("aes128gcm");
    expect(Number(push.headers.ttl)).toBeGreaterThan(0);
    expect(push.headers.urgency).toBe("high");
    expect(push.headers.topic).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    const { key, claims } = verifyVapid(push.headers.authorization, endpoint);
    expect(key).toBe(vapidPublicKey);
    expect(claims.sub).toBe("mailto:ops@chat.test");

    expect(push.body.toString("latin1")).not.toContain("eyes only");
    const payload = JSON.parse(decryptPush(push.body, subscription)) as Record<string, string>;
    expect(payload).toMatchObject({ type: "message", device_id: bob.deviceId, conversation_id: sent.message!.conversationId, seq: "1" });
    expect(payload.preview).toBeUndefined();

    // A second message of the same conversation carries the same topic, so the push service replaces the first.
    await alice.send({ recipientUserId: bob.userId }, "and another");
    const second = await pushService.waitFor((r) => r.path === "/wp/bob" && r !== push);
    expect(second.headers.topic).toBe(push.headers.topic);
    expect(JSON.parse(decryptPush(second.body, subscription))).toMatchObject({ seq: "2" });
  });

  it("carries the preview when the user allowed it", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    const { subscription } = await subscribe(bob, "/wp/preview");
    await serviceClient(PushService, bob).setPushPreviews({ enabled: true });
    await alice.send({ recipientUserId: bob.userId }, "lunch?");
    const push = await pushService.waitFor((r) => r.path === "/wp/preview");
    expect(JSON.parse(decryptPush(push.body, subscription))).toMatchObject({ preview: "lunch?" });
  });

  it("drops a subscription the push service says is gone (410)", async () => {
    const alice = await newUser(server.url, "alice");
    const bob = await newUser(server.url, "bob");
    await subscribe(bob, "/wp/gone");
    pushService.answer = ({ path }) => (path === "/wp/gone" ? 410 : 201);
    await alice.send({ recipientUserId: bob.userId }, "one");
    await pushService.waitFor((r) => r.path === "/wp/gone");
    // Bob's other device keeps its subscription: its push for "two" is queued with any for the first.
    const laptop = await otherDevice(bob);
    await subscribe(laptop, "/wp/alive");
    await waitFor(() => server.logs.some((line) => line.event === "push_target_gone"), 10_000, "the gateway to take in the 410 (a push_target_gone log line)");
    await alice.send({ recipientUserId: bob.userId }, "two");
    await pushService.waitFor((r) => r.path === "/wp/alive");
    // "two" has been queued for Bob's devices by now: none of it for the one whose subscription is gone.
    const db = new Database(join(server.dataDir, "push.db"), { readonly: true });
    try {
      expect(db.prepare("SELECT seq FROM push_jobs WHERE device_id = ? ORDER BY seq").pluck().all(bob.deviceId)).toEqual([1]);
      expect(db.prepare("SELECT count(*) FROM push_targets WHERE device_id = ?").pluck().get(bob.deviceId)).toBe(0);
    } finally {
      db.close();
    }
    expect(pushService.requests.filter((r) => r.path === "/wp/gone")).toHaveLength(1);
  });

  it("refuses subscription keys that are not a P-256 point and a 16-byte secret", async () => {
    const bob = await newUser(server.url, "bob");
    await expectChatError(
      serviceClient(PushService, bob).registerPushTarget({
        target: { case: "webPush", value: { endpoint: `${pushService.url}/x`, p256dh: "AAAA", auth: randomBytes(16).toString("base64url") } },
      }),
      Code.InvalidArgument,
      ErrorReason.PUSH_TARGET_INVALID,
    );
  });
});
