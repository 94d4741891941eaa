import { connect, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import type { FencedLog, LogEntry } from "../store-cassandra/fenced-log.js";

export interface JetStreamLogOptions {
  readonly natsUrl: string;
  /** Default CHAT_LOG. */
  readonly streamName?: string;
  /** Default chat.log: a conversation's entries go to `<prefix>.<conversation>`. */
  readonly subjectPrefix?: string;
  /** Replicas of the stream (3 in a production NATS cluster); used when the stream is created. */
  readonly replicas?: number;
  /** How long an append or a read may take before its outcome counts as unknown. */
  readonly timeoutMs?: number;
}

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const WRONG_LAST_SEQUENCE = 10071;
const NO_MESSAGE_FOUND = 10037;

/**
 * The fenced log on NATS JetStream: one file-backed stream, one subject per conversation, keeping only
 * each subject's last entry (that is all the sequencer ever reads; Cassandra keeps the history). An
 * append carries `Nats-Expected-Last-Subject-Sequence`, so the server refuses it ("wrong last
 * sequence") when another entry was appended to the conversation since: the compare-and-set happens
 * inside the server, under its own lock, and replicated with the stream when it has replicas.
 */
export async function createJetStreamLog(options: JetStreamLogOptions): Promise<FencedLog> {
  const streamName = options.streamName ?? "CHAT_LOG";
  const prefix = options.subjectPrefix ?? "chat.log";
  const timeout = options.timeoutMs ?? 5_000;
  const nc: NatsConnection = await connect({ servers: options.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: "chat-log" });
  let jsm: JetStreamManager & DirectGet;
  let js: JetStreamClient;
  try {
    // The manager has the direct-get API (allow_direct: any replica answers) but its type omits it.
    jsm = (await nc.jetstreamManager({ timeout })) as JetStreamManager & DirectGet;
    await jsm.streams.add({
      name: streamName,
      subjects: [`${prefix}.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: 1,
      num_replicas: options.replicas ?? 1,
      allow_direct: true,
    });
    js = nc.jetstream({ timeout });
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
  // Conversation ids are subject-safe today; anything else is hex-encoded rather than refused.
  const subjectOf = (conversationId: string) =>
    `${prefix}.${SUBJECT_TOKEN.test(conversationId) ? conversationId : `x${Buffer.from(conversationId).toString("hex")}`}`;

  return {
    async last(conversationId): Promise<LogEntry | undefined> {
      try {
        const message = await jsm.direct.getMessage(streamName, { last_by_subj: subjectOf(conversationId) });
        return { position: BigInt(message.seq), data: message.data };
      } catch (error) {
        // The direct API answers a plain 404 status; the stream API an error code.
        if (apiErrorCode(error) === NO_MESSAGE_FOUND || (error as { code?: unknown }).code === "404") return undefined;
        throw error;
      }
    },
    async append(conversationId, expected, data) {
      try {
        const ack = await js.publish(subjectOf(conversationId), data, { expect: { lastSubjectSequence: Number(expected) }, timeout });
        return BigInt(ack.seq);
      } catch (error) {
        if (apiErrorCode(error) === WRONG_LAST_SEQUENCE) return undefined;
        throw error;
      }
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}

interface DirectGet {
  readonly direct: { getMessage(stream: string, query: { last_by_subj: string }): Promise<{ seq: number; data: Uint8Array }> };
}

function apiErrorCode(error: unknown): number | undefined {
  const apiError = (error as { api_error?: { err_code?: number } } | undefined)?.api_error;
  return apiError?.err_code;
}
