import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "nats";

export interface TopologyOptions {
  readonly streamName: string;
  readonly subjectPrefix: string;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly maxMessagesPerGateway: number;
  readonly duplicateWindowMs: number;
  readonly replicas: number;
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
}

/** Gateway ids become subject tokens and consumer names. */
export const GATEWAY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const subjectOf = (subjectPrefix: string, gatewayId: string) => `${subjectPrefix}.gw.${gatewayId}`;
export const durableOf = (gatewayId: string) => `gw_${gatewayId}`;

/**
 * One stream for all gateways, a subject per gateway, as a work queue: a message is removed once its
 * gateway acknowledged it, so the stream holds only what is still on its way, not the traffic of the
 * last maxAge. Messages for a gateway that is gone (no consumer, or one nobody pulls from) are bounded
 * three ways: max age, max messages per subject (the oldest go first) and max bytes overall.
 */
export function streamConfig(options: TopologyOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: options.streamName,
    subjects: [`${options.subjectPrefix}.gw.*`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeMs),
    max_bytes: options.maxBytes,
    max_msgs_per_subject: options.maxMessagesPerGateway,
    duplicate_window: nanos(options.duplicateWindowMs),
    num_replicas: options.replicas,
  };
}

/**
 * The durable pull consumer of one gateway. A work queue stream requires deliver-all, which is also
 * what a gateway restarting under the same id wants: everything still queued for it. The consumer is
 * deleted by the server after maxAge without a pull, so a gateway id that never comes back leaves
 * nothing behind; its messages expire by then anyway.
 */
export function consumerConfig(options: TopologyOptions, gatewayId: string): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: durableOf(gatewayId),
    filter_subject: subjectOf(options.subjectPrefix, gatewayId),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs),
    max_ack_pending: options.maxAckPending,
    inactive_threshold: nanos(options.maxAgeMs),
  };
}

/**
 * Creates the stream or, if it exists with other limits, updates them (a deployment changing its
 * limits just restarts its gateways). Creating the consumer also updates an existing one on 2.9.
 * Both are idempotent, so every gateway runs this at start and after the consumer went missing.
 */
export async function ensureTopology(jsm: JetStreamManager, options: TopologyOptions, gatewayId: string): Promise<void> {
  const stream = streamConfig(options);
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.streams.add(stream);
      break;
    } catch (error) {
      // Gateways starting together race to create the stream: the losers see "name in use with a
      // different configuration" (10058) or, on 2.9, "subjects overlap". Either way it exists now.
      const exists = await jsm.streams.info(stream.name).then(
        () => true,
        () => false,
      );
      if (exists) {
        await jsm.streams.update(stream.name, stream);
        break;
      }
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
  await jsm.consumers.add(stream.name, consumerConfig(options, gatewayId));
}
