export type MessageKindName = "text" | "system" | "tombstone";

export interface NewMessage {
  readonly messageId: string;
  readonly conversationId: string;
  readonly senderUserId: string;
  readonly senderDeviceId: string;
  readonly clientMsgId: string;
  readonly kind: MessageKindName;
  readonly text: string;
  readonly sentAt: Date;
  /** JSON of a SystemEvent for system messages; empty otherwise. */
  readonly systemJson?: string;
  /** Files sent with the message; absent when none. */
  readonly attachments?: readonly AttachmentRef[];
}

/** A file in the blob store, as a message refers to it. */
export interface AttachmentRef {
  readonly attachmentId: string;
  readonly contentType: string;
  readonly size: number;
  readonly fileName: string;
}

export interface StoredMessage extends NewMessage {
  /** 1, 2, 3, ... per conversation, assigned by the store. */
  readonly seq: bigint;
}

export interface AppendResult {
  readonly message: StoredMessage;
  /** True when (senderUserId, clientMsgId) was already stored: `message` is the original. */
  readonly duplicate: boolean;
}

export interface ReadRangeOptions {
  /** Exclusive lower bound. */
  readonly afterSeq?: bigint;
  /** Exclusive upper bound. */
  readonly beforeSeq?: bigint;
  readonly limit: number;
  /** Take the newest `limit` of the range instead of the oldest. Results are ascending either way. */
  readonly newest?: boolean;
}

/**
 * The message log. It is also the sequencer: `append` assigns the conversation's next seq and the
 * seqs it assigns are unique and gapless however many appends run at once.
 */
export interface MessageStore {
  /**
   * Stores the message durably and only then resolves. Idempotent on (senderUserId, clientMsgId):
   * a repeat resolves with the original message and `duplicate: true`, storing nothing. In the same
   * transaction the sender's read watermark moves to the new seq (whoever writes has read up to it).
   */
  append(message: NewMessage): Promise<AppendResult>;
  /** Ascending by seq. */
  readRange(conversationId: string, options: ReadRangeOptions): Promise<StoredMessage[]>;
}
