/**
 * What both sequencers share: the ops a conversation's lane carries, how a lane takes a batch of
 * appends, and the Sequencer methods that queue them. Each sequencer brings only how a batch runs,
 * which is where they differ (a Paxos round, or a compare-and-set on the ordered log).
 */

import type { AppendResult, ConversationRecord, MembershipChange, NewGroup, NewMessage, StoredMessage } from "../../services/ports/index.js";
import { createLanes } from "./lanes.js";
import type { Sequencer } from "./sequencer.js";

export interface Pending<T> {
  settled: boolean;
  /** A try of this op timed out: it may have been stored by that try. */
  uncertain: boolean;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

export interface AppendOp extends Pending<AppendResult> {
  readonly kind: "append";
  readonly message: NewMessage;
}

export interface ChangeOp extends Pending<StoredMessage> {
  readonly kind: "change";
  readonly conversationId: string;
  readonly change: MembershipChange;
  readonly event: NewMessage;
}

export type CreatedGroup = { conversation: ConversationRecord; event: StoredMessage };

export interface CreateOp extends Pending<CreatedGroup> {
  readonly kind: "create";
  readonly group: NewGroup;
  readonly event: NewMessage;
}

type Op = AppendOp | ChangeOp | CreateOp;

export const keyOf = (senderUserId: string, clientMsgId: string) => `${senderUserId}\u0000${clientMsgId}`;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// Bytes a message adds to a batch besides its text: ids, timestamps, the key row.
const ROW_OVERHEAD_BYTES = 256;

/** How long to wait before the next try: short and random after losing a race, growing after errors. */
export function backoffMs(attempt: number, afterError: boolean): number {
  if (afterError) return Math.min(1_000, 10 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
  return attempt <= 1 ? 0 : Math.random() * Math.min(2 ** attempt, 50);
}

/** Answers an op once; later outcomes (a retry racing a timeout) are dropped. */
export function settle<T>(op: Pending<T>, outcome: { value: T } | { error: unknown }): void {
  if (op.settled) return;
  op.settled = true;
  if ("value" in outcome) op.resolve(outcome.value);
  else op.reject(outcome.error);
}

export interface LaneRunners {
  readonly maxBatch: number;
  readonly maxBatchBytes: number;
  /** Stores a conversation's appends together and settles each of them. */
  appends(conversationId: string, batch: AppendOp[]): Promise<void>;
  /** Applies a membership change and settles it. */
  change(op: ChangeOp): Promise<void>;
  create(group: NewGroup, event: NewMessage): Promise<CreatedGroup>;
}

/**
 * A Sequencer over one serial lane per conversation: appends queued together run as one batch (up
 * to maxBatch messages or maxBatchBytes), a membership change or a group creation runs alone.
 */
export function createLaneSequencer(runners: LaneRunners): Sequencer {
  const { maxBatch, maxBatchBytes } = runners;
  const lanes = createLanes<Op>({
    take(queue) {
      if (queue[0]!.kind !== "append") return 1;
      let bytes = 0;
      let count = 0;
      for (const op of queue) {
        if (op.kind !== "append" || count >= maxBatch) break;
        bytes += ROW_OVERHEAD_BYTES + op.message.text.length * 3 + (op.message.systemJson?.length ?? 0) * 3;
        if (count > 0 && bytes > maxBatchBytes) break;
        count++;
      }
      return count;
    },
    async run(conversationId, batch) {
      try {
        const first = batch[0]!;
        if (first.kind === "change") await runners.change(first);
        else if (first.kind === "create") settle(first, { value: await runners.create(first.group, first.event) });
        else await runners.appends(conversationId, batch as AppendOp[]);
      } catch (error) {
        for (const op of batch) settle(op as Pending<unknown>, { error });
      }
    },
    refuse(op) {
      settle(op as Pending<unknown>, { error: new Error("the store is closed") });
    },
  });

  function pending<T>(): { promise: Promise<T>; handlers: Pending<T> } {
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, handlers: { settled: false, uncertain: false, resolve, reject } };
  }

  return {
    append(message) {
      const { promise, handlers } = pending<AppendResult>();
      lanes.submit(message.conversationId, Object.assign(handlers, { kind: "append" as const, message }));
      return promise;
    },
    changeMembership(conversationId, change, event) {
      if (event.conversationId !== conversationId) {
        return Promise.reject(new RangeError(`the event belongs to ${event.conversationId}, not to ${conversationId}`));
      }
      const { promise, handlers } = pending<StoredMessage>();
      lanes.submit(conversationId, Object.assign(handlers, { kind: "change" as const, conversationId, change, event }));
      return promise;
    },
    createGroup(group, event) {
      const { promise, handlers } = pending<CreatedGroup>();
      lanes.submit(group.conversationId, Object.assign(handlers, { kind: "create" as const, group, event }));
      return promise;
    },
    close: () => lanes.close(),
  };
}
