import type {
  ConversationHead,
  ConversationRecord,
  ConversationStore,
  InboxRow,
  MemberRecord,
} from "../../services/ports/index.js";
import {
  logQueries,
  logStatements,
  memberRecord,
  memberStateFromRow,
  recordFromStatics,
  staticsFromRow,
  type ConversationStatics,
  type LogTables,
  type MemberState,
} from "./conversation-log.js";
import { classifyWriteError } from "./errors.js";
import type { ReadMarks } from "./read-marks.js";
import type { Sequencer } from "./sequencer.js";
import { wasApplied, type CqlSession, type Row, type Statement } from "./session.js";
import { needsRepair, type MembershipEntry, type UserIndex } from "./user-index.js";

// Parallel reads when one call fans out over a user's conversations (inbox, heads, groups).
const FAN_OUT = 32;
const CREATE_ATTEMPTS = 5;

async function mapLimited<T, R>(items: readonly T[], limit: number, each: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await each(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Direct conversations whose members one process keeps in memory (oldest forgotten first). */
const DIRECT_MEMBERS_CACHED = 100_000;

const byConversationId = (a: { conversationId: string }, b: { conversationId: string }) =>
  a.conversationId < b.conversationId ? -1 : a.conversationId > b.conversationId ? 1 : 0;

/** What a member may see: everything while a member, up to the event that removed them after. */
function visibleSeq(entry: MembershipEntry, statics: ConversationStatics): bigint {
  return entry.leftSeq === undefined || entry.leftSeq > statics.lastSeq ? statics.lastSeq : entry.leftSeq;
}

export function createCassandraConversations(
  session: CqlSession,
  tables: LogTables,
  sequencer: Sequencer,
  userIndex: UserIndex,
  readMarks: ReadMarks,
): ConversationStore {
  const queries = logQueries(tables);
  const statements = logStatements(tables);
  const createDirectStatics = `INSERT INTO ${tables.log} (conversation_id, conversation_kind, title, created_at, last_seq, member_count, membership_seq)
                               VALUES (?, 'direct', '', ?, 0, ?, 0) IF NOT EXISTS`;

  async function statics(conversationId: string): Promise<ConversationStatics | undefined> {
    return staticsFromRow((await session.read(queries.statics, [conversationId]))[0]);
  }

  // A direct conversation's two members joined at seq 0 and never change, so every send to it can
  // skip the member reads once they are known here. Group members (joined at seq 1 or later) change,
  // and are always read.
  const directMembers = new Map<string, readonly MemberState[]>();

  function rememberDirect(conversationId: string, rows: readonly MemberState[]): void {
    if (rows.length !== 2 || rows.some((m) => m.joinedSeq !== 0n || m.leftSeq !== undefined)) return;
    if (directMembers.size >= DIRECT_MEMBERS_CACHED) directMembers.delete(directMembers.keys().next().value!);
    directMembers.set(conversationId, rows);
  }

  async function member(conversationId: string, userId: string): Promise<MemberState | undefined> {
    const known = directMembers.get(conversationId);
    if (known) return known.find((m) => m.userId === userId);
    const [row] = await session.read(queries.member, [conversationId, userId]);
    return row && memberStateFromRow(row);
  }

  async function currentMembers(conversationId: string): Promise<MemberState[]> {
    const known = directMembers.get(conversationId);
    if (known) return [...known];
    const rows = (await session.readAll(queries.members, [conversationId])).map(memberStateFromRow);
    rememberDirect(conversationId, rows);
    return rows.filter((m) => m.leftSeq === undefined);
  }

  /** The user's index rows joined with their conversations' statics (skipping any that vanished). */
  async function withStatics(userId: string): Promise<Array<{ entry: MembershipEntry; statics: ConversationStatics }>> {
    const entries = await userIndex.list(userId);
    const joined = await mapLimited(entries, FAN_OUT, async (entry) => ({ entry, statics: await statics(entry.conversationId) }));
    return joined.filter((row): row is { entry: MembershipEntry; statics: ConversationStatics } => row.statics !== undefined);
  }

  async function createDirect(conversationId: string, userIds: readonly [string, string], createdAt: Date): Promise<ConversationRecord> {
    const members: MemberState[] = [...new Set(userIds)].map((userId) => ({ userId, role: "member", joinedSeq: 0n, joinedAt: createdAt, changedSeq: 0n }));
    const batch: Statement[] = [
      { query: createDirectStatics, params: [conversationId, createdAt, members.length] },
      ...members.map((m) => statements.putMember(conversationId, m)),
    ];
    for (let attempt = 1; ; attempt++) {
      let rows: Row[];
      try {
        rows = await session.conditionalBatch(batch);
      } catch (error) {
        // Creating is idempotent (a second try finds the first one's conversation), so any outcome may be retried.
        if (attempt >= CREATE_ATTEMPTS || classifyWriteError(error) === "fatal") throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
        continue;
      }
      if (wasApplied(rows)) {
        await userIndex.write(conversationId, "direct", members);
        await userIndex.markIndexed(conversationId, 0n);
        return { conversationId, kind: "direct", title: "", createdAt: new Date(createdAt.getTime()), lastSeq: 0n };
      }
      // Created concurrently (or by an earlier call): return that one, as it stands.
      const existing = staticsFromRow(rows[0]);
      if (!existing) throw new Error(`creating conversation ${conversationId} was refused without saying why`);
      await userIndex.repair(existing);
      return recordFromStatics(existing);
    }
  }

  return {
    async ensureDirectConversation(conversationId, userIds, createdAt) {
      // Every send addressed to a user (rather than a conversation) comes through here: a plain read
      // avoids a Paxos round once the conversation exists.
      const existing = await statics(conversationId);
      if (existing) {
        // Its creator may have died before indexing it for the two users.
        if (needsRepair(existing)) await userIndex.repair(existing);
        return recordFromStatics(existing);
      }
      return createDirect(conversationId, userIds, createdAt);
    },
    createGroup(group, event) {
      return sequencer.createGroup(group, event);
    },
    changeMembership(conversationId, change, event) {
      return sequencer.changeMembership(conversationId, change, event);
    },
    async getConversation(conversationId) {
      const found = await statics(conversationId);
      return found && recordFromStatics(found);
    },
    async isMember(conversationId, userId) {
      const found = await member(conversationId, userId);
      return found !== undefined && found.leftSeq === undefined;
    },
    async getMember(conversationId, userId): Promise<MemberRecord | undefined> {
      const found = await member(conversationId, userId);
      return found && memberRecord(conversationId, found);
    },
    async listMemberIds(conversationId) {
      return (await currentMembers(conversationId)).map((m) => m.userId).sort();
    },
    async listMembers(conversationId) {
      const members = await currentMembers(conversationId);
      members.sort((a, b) => (a.joinedSeq !== b.joinedSeq ? (a.joinedSeq < b.joinedSeq ? -1 : 1) : a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
      return members.map((m) => memberRecord(conversationId, m));
    },
    async listGroups(userId) {
      const entries = (await userIndex.list(userId)).filter((entry) => entry.leftSeq === undefined && entry.kind === "group");
      const found = await mapLimited(entries, FAN_OUT, (entry) => statics(entry.conversationId));
      return found.filter((s): s is ConversationStatics => s !== undefined).map(recordFromStatics).sort(byConversationId);
    },
    async listHeads(userId): Promise<ConversationHead[]> {
      const rows = await withStatics(userId);
      return rows.map(({ entry, statics }) => ({ conversationId: entry.conversationId, lastSeq: visibleSeq(entry, statics) })).sort(byConversationId);
    },
    async listInbox(userId, options) {
      const { limit, after } = options;
      if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      if (limit === 0) return [];
      // The user's conversations are one partition of the index; each conversation's head is one
      // static read. A user has at most thousands of them, so sorting them all per page is cheap,
      // and it keeps appends free of any per-member fan-out. The watermark is read for the page only.
      const rows = (await withStatics(userId)).map(({ entry, statics }) => {
        const visible = visibleSeq(entry, statics);
        const activity =
          visible === 0n
            ? statics.createdAt
            : entry.leftSeq !== undefined && visible === entry.leftSeq && entry.leftAt !== undefined
              ? entry.leftAt
              : (statics.lastSentAt ?? statics.createdAt);
        return { entry, statics, visible, activity };
      });
      rows.sort((a, b) => {
        const at = b.activity.getTime() - a.activity.getTime();
        if (at !== 0) return at;
        return a.entry.conversationId < b.entry.conversationId ? 1 : a.entry.conversationId > b.entry.conversationId ? -1 : 0;
      });
      const start = after
        ? rows.findIndex(
            (row) =>
              row.activity.getTime() < after.lastActivityAt.getTime() ||
              (row.activity.getTime() === after.lastActivityAt.getTime() && row.entry.conversationId < after.conversationId),
          )
        : 0;
      if (start < 0) return [];
      const page = rows.slice(start, start + limit);
      return mapLimited(page, FAN_OUT, async ({ entry, statics, visible, activity }): Promise<InboxRow> => {
        const row = {
          conversation: recordFromStatics(statics),
          visibleLastSeq: visible,
          readSeq: await readMarks.readSeq(entry.conversationId, userId),
          lastActivityAt: activity,
        };
        return entry.leftSeq === undefined ? row : { ...row, leftSeq: entry.leftSeq };
      });
    },
  } satisfies ConversationStore;
}
