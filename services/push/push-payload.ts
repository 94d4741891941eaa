import type { PushJob } from "../ports/index.js";

/**
 * What every provider delivers, as JSON. `collapse_key` is the conversation: a receiver (or the OS)
 * shows one notification per conversation and replaces it, and a "clear" push with the same key
 * takes it down. `preview` is present only when the user allowed previews.
 */
export interface PushPayload {
  readonly type: "message" | "clear";
  /** The job id: the same on every retry of one push, so a receiver can drop repeats. */
  readonly id: string;
  readonly user_id: string;
  readonly device_id: string;
  readonly conversation_id: string;
  /** The message's seq ("message"), or the read watermark ("clear"); a decimal string. */
  readonly seq: string;
  readonly message_id?: string;
  readonly sender_user_id?: string;
  readonly preview?: string;
  readonly collapse_key: string;
  readonly created_at: string;
}

export function pushPayload(job: PushJob): PushPayload {
  const common = {
    type: job.kind,
    id: job.jobId,
    user_id: job.userId,
    device_id: job.deviceId,
    conversation_id: job.conversationId,
    seq: job.seq.toString(),
    collapse_key: job.conversationId,
    created_at: job.createdAt.toISOString(),
  };
  if (job.kind === "clear") return common;
  return { ...common, message_id: job.messageId, sender_user_id: job.senderUserId, ...(job.preview === undefined ? {} : { preview: job.preview }) };
}
