/**
 * What the log sequencer (log-sequencer.ts) needs from an ordered log outside Cassandra: per
 * conversation, read the last entry, and append one only if the last entry is still the one the
 * appender knows (compare-and-set). That compare-and-set is the fence: of two gateways numbering the
 * same conversation from the same tail, the log takes one entry and refuses the other, so a seq is
 * never given twice, whatever either gateway's clock or pauses. backends/log-jetstream implements it
 * on a NATS JetStream stream (expected last subject sequence).
 */
export interface FencedLog {
  /** The conversation's last entry, or undefined while it has none (or it was removed by retention). */
  last(conversationId: string): Promise<LogEntry | undefined>;
  /**
   * Appends `data` if the conversation's last entry is still at `expected` (0n: no entry). Resolves
   * with the new entry's position, or undefined when refused because another entry came first.
   * Rejects when the outcome is unknown (a timeout): the entry may or may not be in the log.
   */
  append(conversationId: string, expected: bigint, data: Uint8Array): Promise<bigint | undefined>;
  close(): Promise<void>;
}

export interface LogEntry {
  /** Increases with every append to the log; only compared for equality by the sequencer. */
  readonly position: bigint;
  readonly data: Uint8Array;
}
