import type { ConversationKindName } from "../../services/ports/index.js";
import { logQueries, memberStateFromRow, type ConversationStatics, type LogTables, type MemberState } from "./conversation-log.js";
import { seqTimestamp, type ReadMarks } from "./read-marks.js";
import type { CqlSession, Statement } from "./session.js";

export interface UserIndexTables extends LogTables {
  readonly memberships: string;
}

/** One row of a user's index: a conversation they are or were in. */
export interface MembershipEntry {
  readonly conversationId: string;
  readonly kind: ConversationKindName;
  readonly joinedSeq: bigint;
  readonly leftSeq?: bigint;
  /** sentAt of the event that removed them. */
  readonly leftAt?: Date;
}

/**
 * memberships_by_user: the conversations of each user, for the inbox, listGroups and listHeads.
 *
 * It lives in another partition than the conversation, so it cannot join the conditional batch that
 * applies a membership change; it is written right after that batch succeeds, before the change is
 * acknowledged. Should the process die in between, the member rows in the conversation (the truth)
 * are ahead of this index until one of these repairs it:
 * - the client retries (it got no ack): the retry finds its key taken and re-writes the index rows
 *   of the users it names (see sequencer.ts);
 * - the next membership change of the conversation, or the next ensureDirectConversation, sees
 *   `indexed_seq < membership_seq` in the statics and re-writes every member row changed since.
 * Each index row is written with the seq of the change as its timestamp, so a late repair can never
 * overwrite a newer state.
 */
export interface UserIndex {
  /** Writes the index rows of these member states. */
  write(conversationId: string, kind: ConversationKindName, members: readonly MemberState[]): Promise<void>;
  /** Records that the index holds every change up to `membershipSeq`. */
  markIndexed(conversationId: string, membershipSeq: bigint): Promise<void>;
  /** Repairs the index if the statics say a change was not indexed; a no-op otherwise. */
  repair(statics: ConversationStatics): Promise<void>;
  list(userId: string): Promise<MembershipEntry[]>;
}

export function needsRepair(statics: ConversationStatics): boolean {
  return statics.indexedSeq === undefined || statics.indexedSeq < statics.membershipSeq;
}

export function createUserIndex(session: CqlSession, tables: UserIndexTables, readMarks: ReadMarks): UserIndex {
  const put = `INSERT INTO ${tables.memberships} (user_id, conversation_id, conversation_kind, joined_seq, left_seq, left_at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
  // A static column written with the seq as timestamp, never by a lightweight transaction: only the
  // highest seq ever recorded sticks.
  const indexed = `UPDATE ${tables.log} USING TIMESTAMP ? SET indexed_seq = ? WHERE conversation_id = ?`;
  const list = `SELECT conversation_id, conversation_kind, joined_seq, left_seq, left_at FROM ${tables.memberships} WHERE user_id = ?`;
  const queries = logQueries(tables);

  const statement = (conversationId: string, kind: ConversationKindName, member: MemberState): Statement => ({
    query: put,
    params: [member.userId, conversationId, kind, member.joinedSeq, member.leftSeq ?? null, member.leftAt ?? null, seqTimestamp(member.changedSeq)],
  });

  const index: UserIndex = {
    async write(conversationId, kind, members) {
      // One partition per user: independent single-row writes, in parallel.
      await Promise.all(members.map((member) => session.writePartition([statement(conversationId, kind, member)])));
    },
    async markIndexed(conversationId, membershipSeq) {
      await session.write(indexed, [seqTimestamp(membershipSeq), membershipSeq, conversationId]);
    },
    async repair(statics) {
      if (!needsRepair(statics)) return;
      const since = statics.indexedSeq;
      const rows = (await session.readAll(queries.members, [statics.conversationId])).map(memberStateFromRow);
      const stale = rows.filter((member) => since === undefined || member.changedSeq > since);
      await index.write(statics.conversationId, statics.kind, stale);
      // Members added by an unindexed change may also have missed their starting read watermark.
      const joinedThen = stale.filter((member) => member.leftSeq === undefined && member.joinedSeq > 0n && member.joinedSeq === member.changedSeq);
      const behind = [];
      for (const member of joinedThen) {
        if ((await readMarks.readSeq(statics.conversationId, member.userId)) < member.joinedSeq) behind.push(member);
      }
      await readMarks.record(
        statics.conversationId,
        behind.map((member) => ({ userId: member.userId, seq: member.joinedSeq, at: member.joinedAt })),
      );
      await index.markIndexed(statics.conversationId, statics.membershipSeq);
    },
    async list(userId) {
      const rows = await session.readAll(list, [userId]);
      return rows.map((row): MembershipEntry => {
        const entry = { conversationId: row.conversation_id as string, kind: row.conversation_kind as ConversationKindName, joinedSeq: row.joined_seq as bigint };
        if (row.left_seq == null) return entry;
        return { ...entry, leftSeq: row.left_seq as bigint, ...(row.left_at == null ? {} : { leftAt: row.left_at as Date }) };
      });
    },
  };
  return index;
}
