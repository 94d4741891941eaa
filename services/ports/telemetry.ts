/**
 * What the services report about their own work, for metrics and logs. The gateway provides the
 * implementation; ids passed here are for log lines only and never become metric labels.
 */
export type Surface = "connect" | "grpc" | "grpc_web" | "graphql";

export interface MessageTrace {
  readonly messageId: string;
  readonly conversationId: string;
  readonly seq: bigint;
  /** The stream or request the message passed through. */
  readonly traceId?: string;
}

export interface Telemetry {
  /** A new message was stored and published; `sendToAckMs` spans the whole send. */
  messageAccepted(trace: MessageTrace, sendToAckMs: number): void;
  /** A message frame was handed to a device stream; `sendToDeliverMs` is from its `sentAt`. */
  messageDelivered(trace: MessageTrace, sendToDeliverMs: number): void;
  storeWrite(ms: number): void;
  /** From the store's ack to the bus publish completing. */
  fanOut(ms: number): void;
  deviceConnected(surface: Surface): void;
  deviceDisconnected(surface: Surface): void;
  presenceWatchStarted(): void;
  presenceWatchEnded(): void;
  /** An error answered inside a stream (a `rejected` frame) rather than as a call's status. */
  frameRejected(code: number, reason: number): void;
}

export const noTelemetry: Telemetry = {
  messageAccepted() {},
  messageDelivered() {},
  storeWrite() {},
  fanOut() {},
  deviceConnected() {},
  deviceDisconnected() {},
  presenceWatchStarted() {},
  presenceWatchEnded() {},
  frameRejected() {},
};
