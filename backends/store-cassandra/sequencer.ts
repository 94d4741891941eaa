/**
 * The sequencer: every entry of a conversation's log (messages, group creation, membership changes)
 * is written here, and gets seq 1, 2, 3, ... with no gap and no duplicate however many gateways
 * (processes, each with its own Client) append to the same conversation at once.
 *
 * How:
 * - The conversation is one partition of conversation_log. Its static column `last_seq` is the
 *   counter; message rows (entry 0) are clustered by seq; idempotency keys (entry 1) and members
 *   (entry 2) live in the same partition.
 * - Appending k messages is ONE conditional batch on that partition:
 *     UPDATE ... SET last_seq = N+k             IF last_seq = N
 *     INSERT message rows N+1 .. N+k
 *     INSERT key row (sender, clientMsgId)      IF NOT EXISTS      (one per message)
 *   Same partition, same table: Cassandra runs it as one Paxos round, so it is applied whole or not
 *   at all. A seq therefore never exists without its message (a crash between "take seq" and "write
 *   message" cannot happen: they are one write), and two messages can never get the same seq.
 * - If the batch is not applied, Cassandra returns the current `last_seq` and any key rows that
 *   already exist. Messages whose key exists resolve to their original (duplicate); the others retry
 *   at the returned `last_seq` (bounded attempts with jitter, then SequencerContentionError).
 * - Idempotency is therefore scoped to the conversation: (conversation, sender, clientMsgId). A retry
 *   always targets the conversation of its first try, so that is the same thing for a client.
 * - Within one process all writes to a conversation go through one lane (lanes.ts): concurrent sends
 *   share a batch (one Paxos round for up to `maxBatch` messages) instead of racing each other; only
 *   other gateways can make a round fail.
 * - A timeout leaves a batch's outcome unknown. It is retried as is: if it was applied, the retry
 *   finds its own keys taken and the messages resolve to what the first try stored.
 * - Membership changes take their seq the same way, one per batch, and also condition on
 *   `membership_seq` (the seq of the last change), so the member rows they were computed from (and
 *   the member count the maxMembers cap is checked against) are still current when the batch
 *   applies; the member rows are written in the same batch. See membership-plan.ts and user-index.ts
 *   for the per-user index written after it.
 * - The sender's read watermark is moved after the batch and before the ack (read-marks.ts). Should
 *   the process die in between, the client's retry (it got no ack) finds the message and re-applies
 *   the move; the watermark is monotone, so re-applying is harmless.
 * - The ack (the promise resolving) comes after the batch and those writes returned at the write
 *   consistency; with `commitlog_sync: batch` (single node) or a quorum of RF 3, that is durable.
 */
import { types } from "cassandra-driver";
import type {
  AppendResult,
  ConversationRecord,
  MembershipChange,
  NewGroup,
  NewMessage,
  StoredMessage,
} from "../../services/ports/index.js";
import { GroupFullError } from "../../services/ports/index.js";
import {
  Entry,
  logQueries,
  logStatements,
  memberStateFromRow,
  messageFromRow,
  recordFromStatics,
  staticsFromRow,
  type ConversationStatics,
  type LogTables,
  type MemberState,
} from "./conversation-log.js";
import { storedFromNew } from "../store-common/stored-message.js";
import { classifyWriteError, ConversationExistsError, IdempotencyKeyConflictError, SequencerContentionError, UnknownConversationError } from "./errors.js";
import { backoffMs, createLaneSequencer, keyOf, settle, sleep, type AppendOp, type ChangeOp } from "./sequencer-lanes.js";
import { initialMembers, planMembershipChange, touchedUsers, type MembershipPlan } from "./membership-plan.js";
import type { ReadMarks, ReadMove } from "./read-marks.js";
import { wasApplied, type CqlSession, type Row, type Statement } from "./session.js";
import type { UserIndex } from "./user-index.js";

export interface SequencerOptions {
  /** Most messages in one conditional batch. */
  readonly maxBatch?: number;
  /**
   * Rough bytes of message data in one batch. Cassandra does not apply batch_size_fail_threshold to
   * a single-partition batch; the cap keeps each Paxos round (and the mutation it commits) small.
   */
  readonly maxBatchBytes?: number;
  /** Compare-and-set rounds (and retries after errors) before giving up on a batch. */
  readonly maxAttempts?: number;
  /** Conversations whose last seq is remembered between lanes, saving a read per idle-to-busy transition. */
  readonly seqCacheSize?: number;
}

export interface Sequencer {
  append(message: NewMessage): Promise<AppendResult>;
  createGroup(group: NewGroup, event: NewMessage): Promise<{ conversation: ConversationRecord; event: StoredMessage }>;
  changeMembership(conversationId: string, change: MembershipChange, event: NewMessage): Promise<StoredMessage>;
  /** Runs everything queued, then refuses new work. */
  close(): Promise<void>;
}

export const DEFAULT_SEQUENCER_OPTIONS: Required<SequencerOptions> = {
  maxBatch: 64,
  maxBatchBytes: 32 * 1024,
  maxAttempts: 100,
  seqCacheSize: 10_000,
};

/** What a conditional batch that was not applied says about the partition. */
interface Refusal {
  /** Undefined when the conversation does not exist. */
  readonly statics?: ConversationStatics;
  /** The keys (sender + clientMsgId) of the batch that were already taken, with their seq. */
  readonly takenKeys: ReadonlyMap<string, bigint>;
}

function refusalOf(rows: readonly Row[]): Refusal {
  const takenKeys = new Map<string, bigint>();
  let statics: ConversationStatics | undefined;
  for (const row of rows) {
    statics ??= staticsFromRow(row);
    if (row.entry === Entry.key) takenKeys.set(keyOf(row.user_id as string, row.client_key as string), row.key_seq as bigint);
  }
  return { statics, takenKeys };
}

export function createSequencer(
  session: CqlSession,
  tables: LogTables,
  readMarks: ReadMarks,
  userIndex: UserIndex,
  options: SequencerOptions = {},
): Sequencer {
  const { maxBatch, maxBatchBytes, maxAttempts, seqCacheSize } = { ...DEFAULT_SEQUENCER_OPTIONS, ...options };
  const statements = logStatements(tables);
  const queries = logQueries(tables);
  const advance = `UPDATE ${tables.log} SET last_seq = ?, last_sent_at = ? WHERE conversation_id = ? IF last_seq = ?`;
  const advanceMembership = `UPDATE ${tables.log} SET last_seq = ?, last_sent_at = ?, membership_seq = ?, member_count = ?, title = ?
                              WHERE conversation_id = ? IF last_seq = ? AND membership_seq = ?`;
  const createGroupStatics = `INSERT INTO ${tables.log} (conversation_id, conversation_kind, title, created_at, last_seq, last_sent_at, member_count, membership_seq)
                              VALUES (?, 'group', ?, ?, 1, ?, ?, 1) IF NOT EXISTS`;

  // The last seq this process saw per conversation: the expected value of the next batch's
  // condition. Only a hint; a wrong one costs one refused round, which returns the right one.
  const lastSeqs = new Map<string, bigint>();
  function rememberSeq(conversationId: string, seq: bigint): void {
    lastSeqs.delete(conversationId);
    lastSeqs.set(conversationId, seq);
    if (lastSeqs.size > seqCacheSize) lastSeqs.delete(lastSeqs.keys().next().value!);
  }
  async function expectedSeq(conversationId: string): Promise<bigint> {
    const known = lastSeqs.get(conversationId);
    if (known !== undefined) return known;
    const statics = staticsFromRow((await session.read(queries.statics, [conversationId]))[0]);
    // A conversation that seems missing is still tried: the refused batch is the authoritative answer.
    return statics?.lastSeq ?? 0n;
  }

  async function readMessages(conversationId: string, seqs: readonly bigint[]): Promise<Map<bigint, StoredMessage>> {
    if (seqs.length === 0) return new Map();
    const rows = await session.read(queries.messagesByKeySeqs, [conversationId, [...new Set(seqs)]]);
    return new Map(rows.map((row) => [row.seq as bigint, messageFromRow(row)]));
  }

  // ---- appends -------------------------------------------------------------------------------

  async function runAppends(conversationId: string, ops: readonly AppendOp[]): Promise<void> {
    // The same key twice in one batch: the later ones are repeats of the first and share its outcome.
    const leaders: AppendOp[] = [];
    const repeats = new Map<AppendOp, AppendOp[]>();
    const byKey = new Map<string, AppendOp>();
    for (const op of ops) {
      const key = keyOf(op.message.senderUserId, op.message.clientMsgId);
      const leader = byKey.get(key);
      if (leader) repeats.get(leader)!.push(op);
      else {
        byKey.set(key, op);
        repeats.set(op, []);
        leaders.push(op);
      }
    }
    try {
      await appendLeaders(conversationId, leaders);
    } catch (error) {
      for (const op of leaders) finish(op, { error });
    }
    for (const leader of leaders) {
      const outcome = outcomes.get(leader) ?? { error: new Error("append was not settled") };
      for (const follower of repeats.get(leader)!) {
        settle(follower, "value" in outcome ? { value: { message: outcome.value.message, duplicate: true } } : outcome);
      }
    }
  }

  // Each leader's outcome, for the repeats of its key that shared its batch.
  const outcomes = new WeakMap<AppendOp, { value: AppendResult } | { error: unknown }>();
  function finish(op: AppendOp, outcome: { value: AppendResult } | { error: unknown }): void {
    if (!outcomes.has(op)) outcomes.set(op, outcome);
    settle(op, outcome);
  }

  async function appendLeaders(conversationId: string, leaders: readonly AppendOp[]): Promise<void> {
    let pending = [...leaders];
    let expected = await expectedSeq(conversationId);
    let lastError: unknown;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > maxAttempts) {
        for (const op of pending) finish(op, { error: new SequencerContentionError(conversationId, maxAttempts, lastError) });
        return;
      }
      const stored = pending.map((op, i) => storedFromNew(op.message, expected + BigInt(i + 1)));
      const last = stored[stored.length - 1];
      const batch: Statement[] = [{ query: advance, params: [last.seq, last.sentAt, conversationId, expected] }];
      for (const message of stored) {
        batch.push(statements.insertMessage(message));
        batch.push(statements.claimKey(conversationId, message.senderUserId, message.clientMsgId, message.seq));
      }

      let rows: Row[];
      try {
        rows = await session.conditionalBatch(batch);
      } catch (error) {
        const kind = classifyWriteError(error);
        if (kind === "fatal") {
          // A statement Cassandra refuses (a value too large, a bad bind): find the culprit alone
          // rather than fail the messages that merely shared its batch.
          if (pending.length > 1) {
            for (const op of pending) await appendLeaders(conversationId, [op]);
          } else {
            finish(pending[0], { error });
          }
          return;
        }
        if (kind === "unknown") for (const op of pending) op.uncertain = true;
        lastError = error;
        await sleep(backoffMs(attempt, true));
        continue;
      }

      if (wasApplied(rows)) {
        rememberSeq(conversationId, last.seq);
        try {
          await readMarks.record(conversationId, stored.map((m): ReadMove => ({ userId: m.senderUserId, seq: m.seq, at: m.sentAt })));
        } catch (error) {
          // Stored, but not everything the ack promises is: the client's retry completes it.
          pending.forEach((op) => finish(op, { error }));
          return;
        }
        pending.forEach((op, i) => finish(op, { value: { message: stored[i], duplicate: false } }));
        return;
      }

      const refusal = refusalOf(rows);
      if (!refusal.statics) {
        lastSeqs.delete(conversationId);
        for (const op of pending) finish(op, { error: new UnknownConversationError(conversationId) });
        return;
      }
      expected = refusal.statics.lastSeq;
      rememberSeq(conversationId, expected);
      if (refusal.takenKeys.size > 0) {
        pending = await resolveRepeats(conversationId, pending, refusal.takenKeys);
        continue;
      }
      lastError = undefined;
      await sleep(backoffMs(attempt, false));
    }
  }

  /** Settles the ops whose key was taken with the message stored under it; returns the others. */
  async function resolveRepeats(conversationId: string, ops: readonly AppendOp[], takenKeys: ReadonlyMap<string, bigint>): Promise<AppendOp[]> {
    const repeats = ops.filter((op) => takenKeys.has(keyOf(op.message.senderUserId, op.message.clientMsgId)));
    const originals = await readMessages(
      conversationId,
      repeats.map((op) => takenKeys.get(keyOf(op.message.senderUserId, op.message.clientMsgId))!),
    );
    const found = repeats.filter((op) => originals.has(takenKeys.get(keyOf(op.message.senderUserId, op.message.clientMsgId))!));
    const originalOf = (op: AppendOp) => originals.get(takenKeys.get(keyOf(op.message.senderUserId, op.message.clientMsgId))!)!;
    // Re-applies the sender's watermark move of the original: a no-op unless the process that stored
    // it died before doing so (the watermark is monotone).
    await readMarks.record(
      conversationId,
      found.map((op) => ({ userId: originalOf(op).senderUserId, seq: originalOf(op).seq, at: originalOf(op).sentAt })),
    );
    for (const op of found) {
      const original = originalOf(op);
      // A try of ours that timed out may be what stored it: then this is no repeat.
      const ours = op.uncertain && original.messageId === op.message.messageId;
      finish(op, { value: { message: original, duplicate: !ours } });
    }
    return ops.filter((op) => !found.includes(op));
  }

  // ---- membership changes --------------------------------------------------------------------

  async function readMembers(conversationId: string, userIds: readonly string[]): Promise<Map<string, MemberState>> {
    if (userIds.length === 0) return new Map();
    const rows = await session.read(queries.membersIn, [conversationId, userIds], { serial: true });
    return new Map(rows.map((row) => [row.user_id as string, memberStateFromRow(row)]));
  }

  async function readStatics(conversationId: string): Promise<ConversationStatics | undefined> {
    // SERIAL: sees the outcome of every lightweight transaction so far, finishing any in flight.
    return staticsFromRow((await session.read(queries.statics, [conversationId], { serial: true }))[0]);
  }

  async function runChange(op: ChangeOp): Promise<void> {
    const { conversationId, change, event } = op;
    const touched = touchedUsers(change);
    let statics: ConversationStatics | undefined;
    let members: Map<string, MemberState> | undefined;
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      if (attempt > maxAttempts) throw new SequencerContentionError(conversationId, maxAttempts, lastError);
      if (!statics || !members) {
        statics = await readStatics(conversationId);
        if (!statics) throw new UnknownConversationError(conversationId);
        await userIndex.repair(statics);
        // Read after the statics: if a change lands in between, these rows are newer than the
        // statics' membership_seq and the batch below is refused, so nothing stale is ever applied.
        members = await readMembers(conversationId, touched);
      }
      const seq = statics.lastSeq + 1n;
      let plan: MembershipPlan;
      try {
        plan = planMembershipChange({ conversationId, rows: members, memberCount: statics.memberCount, change, seq, at: event.sentAt });
      } catch (error) {
        if (!(error instanceof GroupFullError)) throw error;
        // Refusing needs a consistent snapshot: rows and count from the same membership_seq.
        const now = await readStatics(conversationId);
        if (now?.membershipSeq === statics.membershipSeq) throw error;
        statics = undefined;
        continue;
      }

      const stored = storedFromNew(event, seq);
      const batch: Statement[] = [
        {
          query: advanceMembership,
          params: [
            seq,
            stored.sentAt,
            seq,
            plan.memberCount,
            change.title ?? types.unset,
            conversationId,
            statics.lastSeq,
            statics.membershipSeq,
          ],
        },
        statements.insertMessage(stored),
        statements.claimKey(conversationId, stored.senderUserId, stored.clientMsgId, seq),
        ...plan.writes.map((member) => statements.putMember(conversationId, member)),
      ];
      let rows: Row[];
      try {
        rows = await session.conditionalBatch(batch);
      } catch (error) {
        const kind = classifyWriteError(error);
        if (kind === "fatal") throw error;
        if (kind === "unknown") op.uncertain = true;
        lastError = error;
        await sleep(backoffMs(attempt, true));
        continue;
      }

      if (wasApplied(rows)) {
        rememberSeq(conversationId, seq);
        await readMarks.record(conversationId, [
          { userId: stored.senderUserId, seq, at: stored.sentAt },
          ...plan.joined.map((member) => ({ userId: member.userId, seq, at: stored.sentAt })),
        ]);
        await userIndex.write(conversationId, statics.kind, plan.indexed);
        await userIndex.markIndexed(conversationId, seq);
        settle(op, { value: stored });
        return;
      }

      const refusal = refusalOf(rows);
      if (!refusal.statics) throw new UnknownConversationError(conversationId);
      const takenSeq = refusal.takenKeys.get(keyOf(stored.senderUserId, stored.clientMsgId));
      if (takenSeq !== undefined) {
        settle(op, { value: await repeatedChange(conversationId, op, takenSeq, touched) });
        return;
      }
      rememberSeq(conversationId, refusal.statics.lastSeq);
      // Only appends came in between: the member rows read are still current, retry at the new seq.
      if (refusal.statics.membershipSeq === statics.membershipSeq) statics = refusal.statics;
      else statics = undefined;
      lastError = undefined;
      await sleep(backoffMs(attempt, false));
    }
  }

  /** A change whose key is taken: a retry of a change already applied, which resolves to its event. */
  async function repeatedChange(conversationId: string, op: ChangeOp, seq: bigint, touched: readonly string[]): Promise<StoredMessage> {
    const original = (await readMessages(conversationId, [seq])).get(seq);
    if (!original || original.kind !== "system") throw new IdempotencyKeyConflictError(conversationId, op.event.senderUserId, op.event.clientMsgId);
    // Re-apply what follows the batch, in case the process that applied it died before finishing.
    const statics = await readStatics(conversationId);
    const members = [...(await readMembers(conversationId, touched)).values()];
    await readMarks.record(conversationId, [
      { userId: original.senderUserId, seq, at: original.sentAt },
      ...members.filter((m) => m.joinedSeq === seq && m.leftSeq === undefined).map((m) => ({ userId: m.userId, seq, at: original.sentAt })),
    ]);
    if (statics) await userIndex.write(conversationId, statics.kind, members.filter((m) => m.changedSeq === seq));
    return original;
  }

  // ---- group creation ------------------------------------------------------------------------

  async function createGroup(group: NewGroup, event: NewMessage): Promise<{ conversation: ConversationRecord; event: StoredMessage }> {
    const { conversationId } = group;
    const members = initialMembers(group, event);
    const stored = storedFromNew(event, 1n);
    const batch: Statement[] = [
      { query: createGroupStatics, params: [conversationId, group.title, group.createdAt, stored.sentAt, members.length] },
      statements.insertMessage(stored),
      statements.claimKey(conversationId, stored.senderUserId, stored.clientMsgId, 1n),
      ...members.map((member) => statements.putMember(conversationId, member)),
    ];
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      if (attempt > maxAttempts) throw new SequencerContentionError(conversationId, maxAttempts, lastError);
      let rows: Row[];
      try {
        rows = await session.conditionalBatch(batch);
      } catch (error) {
        // Retried as is whatever the outcome: a try that was applied after all makes this one find
        // its own key at seq 1, which resolves to the same group below.
        if (classifyWriteError(error) === "fatal") throw error;
        lastError = error;
        await sleep(backoffMs(attempt, true));
        continue;
      }
      if (wasApplied(rows)) {
        rememberSeq(conversationId, 1n);
        await readMarks.record(conversationId, members.map((m) => ({ userId: m.userId, seq: 1n, at: stored.sentAt })));
        await userIndex.write(conversationId, "group", members);
        await userIndex.markIndexed(conversationId, 1n);
        const conversation: ConversationRecord = { conversationId, kind: "group", title: group.title, createdAt: new Date(group.createdAt.getTime()), lastSeq: 1n };
        return { conversation, event: stored };
      }
      // Taken. Idempotent like append: a retry (same sender and clientMsgId) gets the group its first
      // try made; anyone else is refused.
      const refusal = refusalOf(rows);
      const takenSeq = refusal.takenKeys.get(keyOf(stored.senderUserId, stored.clientMsgId));
      if (refusal.statics?.kind === "group" && takenSeq === 1n) {
        const original = (await readMessages(conversationId, [1n])).get(1n);
        if (original?.kind === "system") {
          const current = (await session.readAll(queries.members, [conversationId])).map(memberStateFromRow);
          const founders = current.filter((m) => m.joinedSeq === 1n && m.leftSeq === undefined);
          await readMarks.record(conversationId, founders.map((m) => ({ userId: m.userId, seq: 1n, at: original.sentAt })));
          await userIndex.repair(refusal.statics);
          return { conversation: recordFromStatics(refusal.statics), event: original };
        }
      }
      throw new ConversationExistsError(conversationId);
    }
  }

  return createLaneSequencer({
    maxBatch,
    maxBatchBytes,
    appends: runAppends,
    change: runChange,
    create: createGroup,
  });
}
