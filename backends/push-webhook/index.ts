import { createHmac } from "node:crypto";
import type { PushSender } from "../../services/ports/index.js";
import { pushPayload } from "../../services/push/push-payload.js";

export const SIGNATURE_HEADER = "x-chat-signature";
export const IDEMPOTENCY_HEADER = "x-chat-idempotency-key";
export const ATTEMPT_HEADER = "x-chat-delivery-attempt";

export interface WebhookSenderOptions {
  /** HMAC-SHA256 key shared with the receivers. */
  readonly secret: Uint8Array;
  /** A try that has no answer within this long fails (and is retried). */
  readonly timeoutMs: number;
  readonly now?: () => Date;
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`: the timestamp is signed with the
 * body, so a receiver that also refuses old timestamps cannot be fed a replayed request.
 */
export function webhookSignature(secret: Uint8Array, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex");
  return `t=${timestampSeconds},v1=${mac}`;
}

/** POSTs the push as JSON to the target's URL. Any 2xx is a delivery; 404 and 410 mean the hook is gone. */
export function createWebhookSender(options: WebhookSenderOptions): PushSender {
  const now = options.now ?? (() => new Date());
  return {
    provider: "webhook",
    async send(target, job, attempt) {
      const body = JSON.stringify(pushPayload(job));
      const timestamp = Math.floor(now().getTime() / 1000);
      try {
        const response = await fetch(target.endpoint, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            [SIGNATURE_HEADER]: webhookSignature(options.secret, timestamp, body),
            [IDEMPOTENCY_HEADER]: job.jobId,
            [ATTEMPT_HEADER]: String(attempt),
          },
          body,
          redirect: "manual",
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        // The body is not needed; reading it frees the connection for reuse.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { ok: true };
        return { ok: false, error: `the webhook answered HTTP ${response.status}`, gone: response.status === 404 || response.status === 410 };
      } catch (error) {
        return { ok: false, error: `the webhook could not be reached: ${(error as Error).message}` };
      }
    },
  } satisfies PushSender;
}
