export interface Watermark {
  readonly seq: bigint;
  /** False when the watermark was already at or past the seq asked for (nothing changed). */
  readonly moved: boolean;
}

export interface ReadMark {
  readonly userId: string;
  readonly seq: bigint;
  readonly at: Date;
}

export interface DeliveryCursor {
  readonly userId: string;
  readonly deviceId: string;
  readonly seq: bigint;
  readonly at: Date;
}

/**
 * Read watermarks (per member) and delivery cursors (per device), both monotone. Every move of a read
 * watermark is kept with its time, so "who read seq S, and when" is exact: the first time each
 * member's watermark reached S. Appending a message also moves its sender's read watermark (see
 * MessageStore.append).
 */
export interface ReceiptStore {
  markRead(conversationId: string, userId: string, seq: bigint, at: Date): Promise<Watermark>;
  /** 0 when the user has read nothing. */
  readSeq(conversationId: string, userId: string): Promise<bigint>;
  /** Members whose read watermark is at or past `seq`, with the time it first got there. */
  readersOf(conversationId: string, seq: bigint): Promise<ReadMark[]>;
  markDelivered(conversationId: string, userId: string, deviceId: string, seq: bigint, at: Date): Promise<Watermark>;
  deliveryCursors(conversationId: string): Promise<DeliveryCursor[]>;
  /** Distinct senders of the messages with afterSeq < seq <= upToSeq: whom a receipt for that range concerns. */
  sendersBetween(conversationId: string, afterSeq: bigint, upToSeq: bigint): Promise<string[]>;
}
