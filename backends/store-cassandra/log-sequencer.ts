/**
 * The log sequencer: numbers a conversation's entries with no Paxos round. An ordered log outside
 * Cassandra (fenced-log.ts; NATS JetStream in a cluster) decides each seq by compare-and-set, and
 * Cassandra keeps the history, written with plain single-partition batches.
 *
 * How a batch of k messages is appended:
 * 1. The lane knows the conversation's tail: the log position of its last entry and the last seq,
 *    with that entry written to Cassandra. Cold (or after losing a race) it reads the last entry from
 *    the log, writes it to Cassandra (a no-op when already there) and reads the statics, whose last_seq
 *    is the floor should the log have lost or dropped entries.
 * 2. It reads the batch's idempotency keys (one read). Every entry up to the tail is in Cassandra, so
 *    a key not found there was never used: a retry resolves to the stored original.
 * 3. It appends one log entry holding the k messages, seqs tail+1..tail+k, expecting the tail's
 *    position. The log refuses it if anything was appended since (another gateway, or this one before
 *    a pause): then back to 1. Accepted means nobody else holds those seqs, ever.
 * 4. It writes the entry to Cassandra as ONE unlogged batch on the conversation's partition: message
 *    rows, key rows, the sender's read watermark and its move, last_seq. Then it acks.
 *
 * Why that keeps the contract:
 * - A seq is given once: only the log's compare-and-set gives seqs, and it accepts one entry per tail.
 * - Every writer of seq N writes the same bytes (the log's entry), so Cassandra's last-write-wins
 *   cannot lose or change a message. Cells that move (last_seq, member rows, watermarks) are written
 *   with timestamps that grow with the seq, so a late write (a gateway woken from a pause, a backlog
 *   flushed after a restart) can never move them back.
 * - Before anyone appends after entry E, E is in Cassandra (step 1 or its own step 4). So a gateway
 *   that died between steps 3 and 4 leaves at most the last entry unwritten, and the next appender
 *   writes it; its messages were never acked, and a client retry resolves to them (step 2 after 1).
 * - Nothing depends on clocks or leases: a gateway paused for any time wakes to a refused append.
 *
 * Membership changes and group creation take their seq the same way; the member rows and counts
 * they were planned from are current because the append is refused if any entry came in between.
 */
import type { AppendResult, ConversationRecord, NewGroup, NewMessage, StoredMessage } from "../../services/ports/index.js";
import { GroupFullError } from "../../services/ports/index.js";
import { storedFromNew, withOptional } from "../store-common/stored-message.js";
import { Entry, logQueries, logStatements, memberStateFromRow, messageFromRow, recordFromStatics, staticsFromRow, type ConversationStatics, type LogTables, type MemberState } from "./conversation-log.js";
import { ConversationExistsError, IdempotencyKeyConflictError, SequencerContentionError, UnknownConversationError } from "./errors.js";
import type { FencedLog } from "./fenced-log.js";
import { backoffMs, createLaneSequencer, keyOf, settle, sleep, type AppendOp, type ChangeOp } from "./sequencer-lanes.js";
import { initialMembers, planMembershipChange, touchedUsers, type MembershipPlan } from "./membership-plan.js";
import { moveKey, seqTimestamp, type ReadMarks } from "./read-marks.js";
import { DEFAULT_SEQUENCER_OPTIONS, type Sequencer, type SequencerOptions } from "./sequencer.js";
import type { CqlSession, Statement } from "./session.js";
import type { UserIndex } from "./user-index.js";

/**
 * Write timestamp of the log-written cells that move (statics, member rows): above any wall-clock
 * timestamp, so the cells a lightweight transaction wrote when a direct conversation was created never
 * shadow them, and growing with the seq, so the newest entry's values win.
 */
const logTimestamp = (seq: bigint) => (1n << 52n) + seq;

interface Tail {
  readonly position: bigint;
  readonly lastSeq: bigint;
}

/** One log entry: the stored messages it numbers, and what a group change or creation writes with them. */
interface LogRecord {
  readonly messages: readonly StoredMessage[];
  readonly group?: {
    readonly create?: { readonly title: string; readonly createdAt: Date };
    readonly title?: string;
    readonly memberCount: number;
    readonly membershipSeq: bigint;
    readonly writes: readonly MemberState[];
    readonly joined: readonly string[];
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(record: LogRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify(record, (_, value: unknown) => (typeof value === "bigint" ? `${value}n` : value)),
  );
}

const BIGINT = /^-?\d+n$/;
const DATE_FIELDS = new Set(["sentAt", "createdAt", "joinedAt", "leftAt"]);

export function decodeRecord(data: Uint8Array): LogRecord {
  const raw = JSON.parse(decoder.decode(data), (key, value: unknown) => {
    if (typeof value === "string" && BIGINT.test(value)) return BigInt(value.slice(0, -1));
    if (typeof value === "string" && DATE_FIELDS.has(key)) return new Date(value);
    return value;
  }) as LogRecord;
  // StoredMessage's optional fields are absent, never undefined: rebuild them the store's way.
  const messages = raw.messages.map((m) => {
    const { systemJson, attachments, ...base } = m;
    return withOptional(base as StoredMessage, systemJson, attachments ? [...attachments] : undefined);
  });
  return { ...raw, messages };
}

const lastSeqOf = (record: LogRecord) => record.messages[record.messages.length - 1]!.seq;

export function createLogSequencer(
  session: CqlSession,
  tables: LogTables & { readonly watermarks: string },
  readMarks: ReadMarks,
  userIndex: UserIndex,
  log: FencedLog,
  options: SequencerOptions = {},
): Sequencer {
  const { maxBatch, maxBatchBytes, maxAttempts, seqCacheSize } = { ...DEFAULT_SEQUENCER_OPTIONS, ...options };
  const statements = logStatements(tables);
  const queries = logQueries(tables);
  const putKey = `INSERT INTO ${tables.log} (conversation_id, entry, seq, user_id, client_key, key_seq) VALUES (?, ${Entry.key}, 0, ?, ?, ?)`;
  const putMove = `INSERT INTO ${tables.log} (conversation_id, entry, seq, user_id, client_key, key_seq, sent_at) VALUES (?, ${Entry.move}, 0, ?, ?, ?, ?)`;
  const putWatermark = `UPDATE ${tables.watermarks} USING TIMESTAMP ? SET seq = ?, at = ? WHERE conversation_id = ? AND user_id = ?`;
  const advance = `UPDATE ${tables.log} USING TIMESTAMP ? SET last_seq = ?, last_sent_at = ? WHERE conversation_id = ?`;
  const advanceGroup = `UPDATE ${tables.log} USING TIMESTAMP ? SET last_seq = ?, last_sent_at = ?, member_count = ?, membership_seq = ? WHERE conversation_id = ?`;
  const setTitle = `UPDATE ${tables.log} USING TIMESTAMP ? SET title = ? WHERE conversation_id = ?`;
  const createStatics = `UPDATE ${tables.log} USING TIMESTAMP ? SET conversation_kind = 'group', created_at = ? WHERE conversation_id = ?`;
  const putMember = `INSERT INTO ${tables.log} (conversation_id, entry, seq, user_id, client_key, role, joined_seq, left_seq, joined_at, left_at, changed_seq)
                     VALUES (?, ${Entry.member}, 0, ?, '', ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
  const keysOf = `SELECT user_id, client_key, key_seq FROM ${tables.log} WHERE conversation_id = ? AND entry = ${Entry.key} AND seq = 0 AND user_id = ? AND client_key IN ?`;

  // The tail per conversation, known to be written to Cassandra. Oldest forgotten first.
  const tails = new Map<string, Tail>();
  const remember = (conversationId: string, tail: Tail) => {
    tails.delete(conversationId);
    if (tails.size >= seqCacheSize) tails.delete(tails.keys().next().value!);
    tails.set(conversationId, tail);
  };

  /** Every write an entry makes, as one unlogged batch on the conversation's partition key. */
  function materializeStatements(conversationId: string, record: LogRecord): Statement[] {
    const batch: Statement[] = [];
    const senderMoves = new Map<string, StoredMessage>();
    for (const message of record.messages) {
      batch.push(statements.insertMessage(message));
      batch.push({ query: putKey, params: [conversationId, message.senderUserId, message.clientMsgId, message.seq] });
      senderMoves.set(message.senderUserId, message);
      // The move's history row lives in the log partition (readersOf reads it there).
      batch.push({ query: putMove, params: [conversationId, message.senderUserId, moveKey(message.seq), message.seq, message.sentAt] });
    }
    const last = record.messages[record.messages.length - 1]!;
    const group = record.group;
    for (const message of senderMoves.values()) {
      batch.push({ query: putWatermark, params: [seqTimestamp(message.seq), message.seq, message.sentAt, conversationId, message.senderUserId] });
    }
    if (!group) {
      batch.push({ query: advance, params: [logTimestamp(last.seq), last.seq, last.sentAt, conversationId] });
      return batch;
    }
    const ts = logTimestamp(last.seq);
    if (group.create) batch.push({ query: createStatics, params: [ts, group.create.createdAt, conversationId] });
    if (group.title !== undefined) batch.push({ query: setTitle, params: [ts, group.title, conversationId] });
    batch.push({ query: advanceGroup, params: [ts, last.seq, last.sentAt, group.memberCount, group.membershipSeq, conversationId] });
    for (const member of group.writes) {
      batch.push({
        query: putMember,
        params: [conversationId, member.userId, member.role, member.joinedSeq, member.leftSeq ?? null, member.joinedAt, member.leftAt ?? null, member.changedSeq, ts],
      });
    }
    for (const userId of group.joined) {
      if (senderMoves.has(userId)) continue;
      batch.push({ query: putMove, params: [conversationId, userId, moveKey(last.seq), last.seq, last.sentAt] });
      batch.push({ query: putWatermark, params: [seqTimestamp(last.seq), last.seq, last.sentAt, conversationId, userId] });
    }
    return batch;
  }

  const materialize = (conversationId: string, record: LogRecord) => session.writePartition(materializeStatements(conversationId, record));

  async function readStatics(conversationId: string): Promise<ConversationStatics | undefined> {
    return staticsFromRow((await session.read(queries.statics, [conversationId]))[0]);
  }

  /** The tail from the log, its last entry written to Cassandra, and the statics read after that. */
  async function learnTail(conversationId: string): Promise<{ tail: Tail; statics: ConversationStatics | undefined; last?: LogRecord }> {
    const [entry, seen] = await Promise.all([log.last(conversationId), readStatics(conversationId)]);
    let statics = seen;
    let record: LogRecord | undefined;
    if (entry) {
      record = decodeRecord(entry.data);
      // last_seq is written in the same single-partition batch as the entry's rows: at or past the
      // entry, Cassandra has it already (the common case after losing a race to a live gateway).
      if (!statics || statics.lastSeq < lastSeqOf(record)) {
        await materialize(conversationId, record);
        statics = await readStatics(conversationId);
      }
    }
    const fromLog = record ? lastSeqOf(record) : 0n;
    // Cassandra ahead of the log: the log lost or dropped entries that were written here. Number on.
    const lastSeq = statics && statics.lastSeq > fromLog ? statics.lastSeq : fromLog;
    const tail = { position: entry?.position ?? 0n, lastSeq };
    remember(conversationId, tail);
    return { tail, statics, ...(record ? { last: record } : {}) };
  }

  /** The stored seq of each (sender, clientMsgId) of `ops` that is taken. */
  async function takenKeys(conversationId: string, keys: ReadonlyArray<{ senderUserId: string; clientMsgId: string }>): Promise<Map<string, bigint>> {
    const bySender = new Map<string, string[]>();
    for (const { senderUserId, clientMsgId } of keys) bySender.set(senderUserId, [...(bySender.get(senderUserId) ?? []), clientMsgId]);
    const taken = new Map<string, bigint>();
    await Promise.all(
      [...bySender].map(async ([senderUserId, clientMsgIds]) => {
        for (const row of await session.read(keysOf, [conversationId, senderUserId, clientMsgIds])) {
          taken.set(keyOf(senderUserId, row.client_key as string), row.key_seq as bigint);
        }
      }),
    );
    return taken;
  }

  async function readMessages(conversationId: string, seqs: readonly bigint[]): Promise<Map<bigint, StoredMessage>> {
    if (seqs.length === 0) return new Map();
    const rows = await session.read(queries.messagesByKeySeqs, [conversationId, [...new Set(seqs)]]);
    return new Map(rows.map((row) => [row.seq as bigint, messageFromRow(row)]));
  }

  // ---- appends -------------------------------------------------------------------------------

  async function runAppends(conversationId: string, ops: readonly AppendOp[]): Promise<void> {
    // Repeats inside one batch (a retry sent before the first try was answered) take no seq of their
    // own: they get what their first copy gets.
    const firstOf = new Map<string, AppendOp>();
    const repeats: Array<{ op: AppendOp; first: AppendOp }> = [];
    for (const op of ops) {
      const key = keyOf(op.message.senderUserId, op.message.clientMsgId);
      const first = firstOf.get(key);
      if (first) repeats.push({ op, first });
      else firstOf.set(key, op);
    }
    for (const { op, first } of repeats) {
      const resolveFirst = first.resolve;
      const rejectFirst = first.reject;
      Object.assign(first, {
        resolve: (value: AppendResult) => {
          resolveFirst(value);
          settle(op, { value: { message: value.message, duplicate: true } });
        },
        reject: (error: unknown) => {
          rejectFirst(error);
          settle(op, { error });
        },
      });
    }
    await appendDistinct(conversationId, [...firstOf.values()]);
  }

  async function appendDistinct(conversationId: string, ops: readonly AppendOp[]): Promise<void> {
    let pending = [...ops];
    let lastError: unknown;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > maxAttempts) {
        const error = new SequencerContentionError(conversationId, maxAttempts, lastError);
        for (const op of pending) settle(op, { error });
        return;
      }
      let tail = tails.get(conversationId);
      try {
        if (!tail) {
          const learned = await learnTail(conversationId);
          if (!learned.statics) {
            for (const op of pending) settle(op, { error: new UnknownConversationError(conversationId) });
            return;
          }
          tail = learned.tail;
        }
        pending = await resolveRepeats(conversationId, pending);
      } catch (error) {
        lastError = error;
        tails.delete(conversationId);
        await sleep(backoffMs(attempt, true));
        continue;
      }
      if (pending.length === 0) return;

      const stored = pending.map((op, i) => storedFromNew(op.message, tail.lastSeq + 1n + BigInt(i)));
      const record: LogRecord = { messages: stored };
      let position: bigint | undefined;
      try {
        position = await log.append(conversationId, tail.position, encodeRecord(record));
      } catch (error) {
        // Maybe appended: the next try learns the tail again and finds these keys if it was.
        for (const op of pending) op.uncertain = true;
        lastError = error;
        tails.delete(conversationId);
        await sleep(backoffMs(attempt, true));
        continue;
      }
      if (position === undefined) {
        tails.delete(conversationId);
        lastError = undefined;
        await sleep(backoffMs(attempt, false));
        continue;
      }
      // The seqs are ours now. Until the entry is in Cassandra, the next batch must not number past it.
      tails.delete(conversationId);
      try {
        await writeWithRetries(conversationId, record);
      } catch (error) {
        // Numbered in the log but not written here: not acked. The next appender writes it, and the
        // client's retry resolves to it.
        for (const op of pending) settle(op, { error });
        return;
      }
      remember(conversationId, { position, lastSeq: stored[stored.length - 1]!.seq });
      pending.forEach((op, i) => settle(op, { value: { message: stored[i]!, duplicate: false } }));
      return;
    }
  }

  async function writeWithRetries(conversationId: string, record: LogRecord): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await materialize(conversationId, record);
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(backoffMs(attempt, true));
      }
    }
  }

  /** Settles the ops whose key is taken with the message stored under it; returns the others. */
  async function resolveRepeats(conversationId: string, ops: readonly AppendOp[]): Promise<AppendOp[]> {
    const taken = await takenKeys(conversationId, ops.map((op) => op.message));
    if (taken.size === 0) return [...ops];
    const seqOf = (op: AppendOp) => taken.get(keyOf(op.message.senderUserId, op.message.clientMsgId));
    const originals = await readMessages(conversationId, ops.map(seqOf).filter((seq): seq is bigint => seq !== undefined));
    const rest: AppendOp[] = [];
    for (const op of ops) {
      const seq = seqOf(op);
      const original = seq === undefined ? undefined : originals.get(seq);
      if (!original) {
        rest.push(op);
        continue;
      }
      const ours = op.uncertain && original.messageId === op.message.messageId;
      settle(op, { value: { message: original, duplicate: !ours } });
    }
    return rest;
  }

  // ---- membership changes --------------------------------------------------------------------

  async function readMembers(conversationId: string, userIds: readonly string[]): Promise<Map<string, MemberState>> {
    if (userIds.length === 0) return new Map();
    const rows = await session.read(queries.membersIn, [conversationId, userIds]);
    return new Map(rows.map((row) => [row.user_id as string, memberStateFromRow(row)]));
  }

  async function runChange(op: ChangeOp): Promise<StoredMessage> {
    const { conversationId, change, event } = op;
    const touched = touchedUsers(change);
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      if (attempt > maxAttempts) throw new SequencerContentionError(conversationId, maxAttempts, lastError);
      let tail: Tail;
      let statics: ConversationStatics | undefined;
      let members: Map<string, MemberState>;
      try {
        // Always from the log: the member rows below must be those of the tail the append expects.
        ({ tail, statics } = await learnTail(conversationId));
        if (!statics) throw new UnknownConversationError(conversationId);
        const takenSeq = (await takenKeys(conversationId, [event])).get(keyOf(event.senderUserId, event.clientMsgId));
        if (takenSeq !== undefined) return await repeatedChange(conversationId, op, takenSeq, touched);
        await userIndex.repair(statics);
        members = await readMembers(conversationId, touched);
      } catch (error) {
        if (error instanceof UnknownConversationError || error instanceof IdempotencyKeyConflictError) throw error;
        lastError = error;
        await sleep(backoffMs(attempt, true));
        continue;
      }
      const seq = tail.lastSeq + 1n;
      let plan: MembershipPlan;
      try {
        plan = planMembershipChange({ conversationId, rows: members, memberCount: statics.memberCount, change, seq, at: event.sentAt });
      } catch (error) {
        if (!(error instanceof GroupFullError)) throw error;
        // Refuse only on a snapshot of one tail: nothing appended while the rows were read.
        if ((await log.last(conversationId))?.position === tail.position) throw error;
        continue;
      }
      const stored = storedFromNew(event, seq);
      const record: LogRecord = {
        messages: [stored],
        group: {
          ...(change.title !== undefined ? { title: change.title } : {}),
          memberCount: plan.memberCount,
          membershipSeq: seq,
          writes: plan.writes,
          joined: plan.joined.map((m) => m.userId),
        },
      };
      let position: bigint | undefined;
      try {
        position = await log.append(conversationId, tail.position, encodeRecord(record));
      } catch (error) {
        op.uncertain = true;
        lastError = error;
        tails.delete(conversationId);
        await sleep(backoffMs(attempt, true));
        continue;
      }
      tails.delete(conversationId);
      if (position === undefined) {
        await sleep(backoffMs(attempt, false));
        continue;
      }
      await writeWithRetries(conversationId, record);
      remember(conversationId, { position, lastSeq: seq });
      await userIndex.write(conversationId, statics.kind, plan.indexed);
      await userIndex.markIndexed(conversationId, seq);
      return stored;
    }
  }

  /** A change whose key is taken: a retry of a change already applied, which resolves to its event. */
  async function repeatedChange(conversationId: string, op: ChangeOp, seq: bigint, touched: readonly string[]): Promise<StoredMessage> {
    const original = (await readMessages(conversationId, [seq])).get(seq);
    if (!original || original.kind !== "system") throw new IdempotencyKeyConflictError(conversationId, op.event.senderUserId, op.event.clientMsgId);
    // What follows the log write may not have happened (the process that did it died): do it again.
    const statics = await readStatics(conversationId);
    const members = [...(await readMembers(conversationId, touched)).values()];
    await readMarks.record(
      conversationId,
      members.filter((m) => m.joinedSeq === seq && m.leftSeq === undefined).map((m) => ({ userId: m.userId, seq, at: original.sentAt })),
    );
    if (statics) await userIndex.write(conversationId, statics.kind, members.filter((m) => m.changedSeq === seq));
    return original;
  }

  // ---- group creation ------------------------------------------------------------------------

  async function createGroup(group: NewGroup, event: NewMessage): Promise<{ conversation: ConversationRecord; event: StoredMessage }> {
    const { conversationId } = group;
    const members = initialMembers(group, event);
    const stored = storedFromNew(event, 1n);
    const record: LogRecord = {
      messages: [stored],
      group: {
        create: { title: group.title, createdAt: group.createdAt },
        title: group.title,
        memberCount: members.length,
        membershipSeq: 1n,
        writes: members,
        joined: members.map((m) => m.userId),
      },
    };
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      if (attempt > maxAttempts) throw new SequencerContentionError(conversationId, maxAttempts, lastError);
      let position: bigint | undefined;
      try {
        // Only into an empty log, and only if Cassandra has no such conversation either.
        if (attempt === 1 && (await readStatics(conversationId))) throw new ConversationExistsError(conversationId);
        position = await log.append(conversationId, 0n, encodeRecord(record));
      } catch (error) {
        if (error instanceof ConversationExistsError) return existingGroup(conversationId, stored);
        // Retried as is: a try that was appended after all makes the next one refused, and the
        // refusal resolves to this same group below.
        lastError = error;
        await sleep(backoffMs(attempt, true));
        continue;
      }
      if (position === undefined) return existingGroup(conversationId, stored);
      await writeWithRetries(conversationId, record);
      remember(conversationId, { position, lastSeq: 1n });
      await userIndex.write(conversationId, "group", members);
      await userIndex.markIndexed(conversationId, 1n);
      const conversation: ConversationRecord = { conversationId, kind: "group", title: group.title, createdAt: new Date(group.createdAt.getTime()), lastSeq: 1n };
      return { conversation, event: stored };
    }
  }

  /** The id is taken: a retry of the same creation (same sender and clientMsgId) gets that group; anyone else is refused. */
  async function existingGroup(conversationId: string, stored: StoredMessage): Promise<{ conversation: ConversationRecord; event: StoredMessage }> {
    const { statics } = await learnTail(conversationId);
    const takenSeq = (await takenKeys(conversationId, [stored])).get(keyOf(stored.senderUserId, stored.clientMsgId));
    if (statics?.kind === "group" && takenSeq === 1n) {
      const original = (await readMessages(conversationId, [1n])).get(1n);
      if (original?.kind === "system") {
        const current = (await session.readAll(queries.members, [conversationId])).map(memberStateFromRow);
        const founders = current.filter((m) => m.joinedSeq === 1n && m.leftSeq === undefined);
        await readMarks.record(conversationId, founders.map((m) => ({ userId: m.userId, seq: 1n, at: original.sentAt })));
        await userIndex.write(conversationId, "group", founders);
        await userIndex.markIndexed(conversationId, statics.membershipSeq);
        return { conversation: recordFromStatics(statics), event: original };
      }
    }
    throw new ConversationExistsError(conversationId);
  }

  return createLaneSequencer({
    maxBatch,
    maxBatchBytes,
    appends: runAppends,
    change: async (op) => settle(op, { value: await runChange(op) }),
    create: createGroup,
  });
}
