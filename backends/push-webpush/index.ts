import { createHash } from "node:crypto";
import webpush from "web-push";
import type { PushSender } from "../../services/ports/index.js";
import { pushPayload } from "../../services/push/push-payload.js";

export interface VapidKeys {
  /** Uncompressed P-256 public key, base64url: what browsers take as applicationServerKey. */
  readonly publicKey: string;
  readonly privateKey: string;
}

export interface WebPushSenderOptions {
  readonly vapid: VapidKeys;
  /** `mailto:` or `https:` contact the push services may use to reach the operator. */
  readonly subject: string;
  /** How long the push service keeps a push for a device that is offline. */
  readonly ttlSeconds: number;
  readonly timeoutMs: number;
}

export function generateVapidKeys(): VapidKeys {
  return webpush.generateVAPIDKeys();
}

/**
 * The Web Push `Topic` header: at most 32 URL-safe characters, so a hash of the conversation id. A
 * push service replaces a stored, undelivered push with a newer one of the same topic.
 */
export function webPushTopic(conversationId: string): string {
  return createHash("sha256").update(conversationId).digest("base64url").slice(0, 32);
}

/**
 * RFC 8030 push with an RFC 8291 (aes128gcm) encrypted payload and an RFC 8292 VAPID JWT, built by
 * the `web-push` package. The request itself goes out through fetch, which (unlike web-push's own
 * sender) also speaks plain HTTP, so a push service on loopback can be tested without TLS.
 */
export function createWebPushSender(options: WebPushSenderOptions): PushSender {
  return {
    provider: "web-push",
    async send(target, job) {
      if (!target.p256dh || !target.auth) return { ok: false, error: "the subscription has no keys", gone: true };
      let details: ReturnType<typeof webpush.generateRequestDetails>;
      try {
        details = webpush.generateRequestDetails(
          { endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } },
          JSON.stringify(pushPayload(job)),
          {
            vapidDetails: { subject: options.subject, publicKey: options.vapid.publicKey, privateKey: options.vapid.privateKey },
            TTL: options.ttlSeconds,
            topic: webPushTopic(job.conversationId),
            urgency: job.kind === "message" ? "high" : "normal",
            contentEncoding: "aes128gcm",
          },
        );
      } catch (error) {
        // Keys that do not parse will never work: drop the subscription rather than retry.
        return { ok: false, error: `the subscription cannot be encrypted to: ${(error as Error).message}`, gone: true };
      }
      try {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(details.headers)) headers[name] = String(value);
        const response = await fetch(details.endpoint, {
          method: details.method,
          headers,
          body: details.body ? new Uint8Array(details.body) : undefined,
          redirect: "manual",
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { ok: true };
        // 404 and 410: the subscription expired or was unsubscribed (RFC 8030 section 7.3).
        return { ok: false, error: `the push service answered HTTP ${response.status}`, gone: response.status === 404 || response.status === 410 };
      } catch (error) {
        return { ok: false, error: `the push service could not be reached: ${(error as Error).message}` };
      }
    },
  } satisfies PushSender;
}
