import type { Database } from "better-sqlite3";
import {
  GroupFullError,
  type ConversationHead,
  type ConversationKindName,
  type ConversationRecord,
  type ConversationStore,
  type GroupRoleName,
  type InboxRow,
  type MemberRecord,
  type MembershipChange,
  type NewGroup,
  type NewMessage,
  type StoredMessage,
} from "../../services/ports/index.js";
import { UnknownConversationError, type SqliteLog } from "./log.js";
import type { SqliteWriter } from "./writer.js";

interface ConversationRow {
  conversation_id: string;
  kind: string;
  title: string;
  created_at: bigint;
  last_seq: bigint;
}

interface MemberRow {
  conversation_id: string;
  user_id: string;
  role: string;
  joined_seq: bigint;
  left_seq: bigint | null;
  joined_at: bigint;
}

interface InboxQueryRow extends ConversationRow {
  left_seq: bigint | null;
  visible_seq: bigint;
  activity_at: bigint;
}

/** Conversations whose members are kept in memory; past it the longest-cached is dropped. */
const MEMBER_CACHE_CONVERSATIONS = 20_000;

const CONVERSATION_COLUMNS = `conversation_id, kind, title, created_at, last_seq`;
const MEMBER_COLUMNS = `conversation_id, user_id, role, joined_seq, left_seq, joined_at`;

function fromRow(row: ConversationRow): ConversationRecord {
  return {
    conversationId: row.conversation_id,
    kind: row.kind as ConversationKindName,
    title: row.title,
    createdAt: new Date(Number(row.created_at)),
    lastSeq: row.last_seq,
  };
}

function memberFromRow(row: MemberRow): MemberRecord {
  const member = {
    conversationId: row.conversation_id,
    userId: row.user_id,
    role: row.role as GroupRoleName,
    joinedSeq: row.joined_seq,
    joinedAt: new Date(Number(row.joined_at)),
  };
  return row.left_seq === null ? member : { ...member, leftSeq: row.left_seq };
}

// What a member may see: everything while a member, up to the event that removed them after.
const VISIBLE_SEQ = `CASE WHEN m.left_seq IS NULL OR m.left_seq > c.last_seq THEN c.last_seq ELSE m.left_seq END`;

/** Expects `db.defaultSafeIntegers(true)`: seqs are read as bigint. */
export function createSqliteConversations(db: Database, log: SqliteLog, writer: SqliteWriter): ConversationStore {
  const select = db.prepare<[string], ConversationRow>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = ?`);
  const insertDirect = db.prepare<[string, number]>(
    `INSERT OR IGNORE INTO conversations (conversation_id, kind, title, created_at, last_seq) VALUES (?, 'direct', '', ?, 0)`,
  );
  const insertDirectMember = db.prepare<[string, string, number]>(
    `INSERT OR IGNORE INTO members (conversation_id, user_id, role, joined_seq, joined_at) VALUES (?, ?, 'member', 0, ?)`,
  );
  // Plain INSERT: a conversation id that is taken fails on the primary key, and the group with it.
  const insertGroup = db.prepare<[string, string, number]>(
    `INSERT INTO conversations (conversation_id, kind, title, created_at, last_seq) VALUES (?, 'group', ?, ?, 0)`,
  );
  const insertMember = db.prepare<[string, string, string, bigint, number]>(
    `INSERT INTO members (conversation_id, user_id, role, joined_seq, joined_at) VALUES (?, ?, ?, ?, ?)`,
  );
  // A former member's row is reset; a current member's is left alone (changes = 0).
  const upsertMember = db.prepare<[string, string, string, bigint, number]>(
    `INSERT INTO members (conversation_id, user_id, role, joined_seq, left_seq, joined_at) VALUES (?, ?, ?, ?, NULL, ?)
     ON CONFLICT (conversation_id, user_id) DO UPDATE
        SET role = excluded.role, joined_seq = excluded.joined_seq, left_seq = NULL, joined_at = excluded.joined_at
      WHERE members.left_seq IS NOT NULL`,
  );
  const leave = db.prepare<[bigint, string, string]>(
    `UPDATE members SET left_seq = ? WHERE conversation_id = ? AND user_id = ? AND left_seq IS NULL`,
  );
  const setRole = db.prepare<[string, string, string]>(
    `UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ? AND left_seq IS NULL`,
  );
  const setTitle = db.prepare<[string, string]>(`UPDATE conversations SET title = ? WHERE conversation_id = ?`);
  const memberIds = db
    .prepare<[string], string>(`SELECT user_id FROM members WHERE conversation_id = ? AND left_seq IS NULL ORDER BY user_id`)
    .pluck();
  const member = db.prepare<[string, string], MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members WHERE conversation_id = ? AND user_id = ?`);
  const members = db.prepare<[string], MemberRow>(
    `SELECT ${MEMBER_COLUMNS} FROM members WHERE conversation_id = ? AND left_seq IS NULL ORDER BY joined_seq, user_id`,
  );
  const groups = db.prepare<[string], ConversationRow>(
    `SELECT c.conversation_id, c.kind, c.title, c.created_at, c.last_seq
       FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id
      WHERE m.user_id = ? AND m.left_seq IS NULL AND c.kind = 'group'
      ORDER BY c.conversation_id`,
  );
  const heads = db.prepare<[string], { conversation_id: string; last_seq: bigint }>(
    `SELECT c.conversation_id, ${VISIBLE_SEQ} AS last_seq
       FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id
      WHERE m.user_id = ?
      ORDER BY c.conversation_id`,
  );
  // Every conversation the user is or was in, with the sentAt of the last message they may see:
  // members_by_user, then primary-key seeks into conversations and messages per row. A user has at
  // most thousands of rows, so sorting them all per page is cheap; the watermark is read afterwards
  // for the page only.
  const inbox = db.prepare<
    { userId: string; hasAfter: number; afterAt: number; afterId: string; limit: number },
    InboxQueryRow
  >(
    `WITH visible AS (
       SELECT c.conversation_id, c.kind, c.title, c.created_at, c.last_seq, m.left_seq, ${VISIBLE_SEQ} AS visible_seq
         FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id
        WHERE m.user_id = @userId
     ), heads AS (
       SELECT v.*, COALESCE(
                (SELECT x.sent_at FROM messages x WHERE x.conversation_id = v.conversation_id AND x.seq = v.visible_seq),
                v.created_at) AS activity_at
         FROM visible v
     )
     SELECT * FROM heads
      WHERE NOT @hasAfter OR activity_at < @afterAt OR (activity_at = @afterAt AND conversation_id < @afterId)
      ORDER BY activity_at DESC, conversation_id DESC
      LIMIT @limit`,
  );

  // Current members per conversation, read on every send (the membership check and the fan-out).
  // Only this process writes the file, and every membership write below drops the entry it changes.
  const memberCache = new Map<string, { readonly ids: readonly string[]; readonly set: ReadonlySet<string> }>();
  const currentMembers = (conversationId: string) => {
    let entry = memberCache.get(conversationId);
    if (!entry) {
      const ids = memberIds.all(conversationId);
      entry = { ids, set: new Set(ids) };
      if (memberCache.size >= MEMBER_CACHE_CONVERSATIONS) memberCache.delete(memberCache.keys().next().value!);
      memberCache.set(conversationId, entry);
    }
    return entry;
  };

  const createDirect = db.transaction((conversationId: string, userIds: readonly [string, string], createdAt: number) => {
    memberCache.delete(conversationId);
    insertDirect.run(conversationId, createdAt);
    for (const userId of userIds) insertDirectMember.run(conversationId, userId, createdAt);
    return select.get(conversationId)!;
  });

  // Runs inside the writer's transaction.
  function createGroupNow(group: NewGroup, event: NewMessage): { conversation: ConversationRecord; event: StoredMessage } {
    if (event.conversationId !== group.conversationId) {
      throw new RangeError(`the event belongs to ${event.conversationId}, not to the new group ${group.conversationId}`);
    }
    // Idempotent like append: a retry (same sender and clientMsgId) gets the group its first try
    // made. A key used by any other message falls through to the unique index and is refused.
    const original = log.findByKey(event.senderUserId, event.clientMsgId);
    if (original && original.seq === 1n && original.kind === "system") {
      const existing = select.get(original.conversationId);
      if (existing?.kind === "group") return { conversation: fromRow(existing), event: original };
    }
    const createdAt = group.createdAt.getTime();
    memberCache.delete(group.conversationId);
    insertGroup.run(group.conversationId, group.title, createdAt);
    for (const { userId, role } of group.members) insertMember.run(group.conversationId, userId, role, 1n, createdAt);
    const stored = log.appendNext(event);
    for (const { userId } of group.members) log.moveReadMark(group.conversationId, userId, stored.seq, stored.sentAt.getTime());
    return { conversation: fromRow(select.get(group.conversationId)!), event: stored };
  }

  // Runs inside the writer's transaction; throwing undoes everything it did.
  function changeMembershipNow(conversationId: string, change: MembershipChange, event: NewMessage): StoredMessage {
    if (event.conversationId !== conversationId) {
      throw new RangeError(`the event belongs to ${event.conversationId}, not to ${conversationId}`);
    }
    // A retried change (same sender and clientMsgId) resolves with the event of its first try and
    // applies nothing again.
    const original = log.findByKey(event.senderUserId, event.clientMsgId);
    if (original && original.conversationId === conversationId && original.kind === "system") return original;
    if (!select.get(conversationId)) throw new UnknownConversationError(conversationId);

    const removed = new Set(change.remove ?? []);
    const added = change.add ?? [];
    if (change.maxMembers !== undefined) {
      const current = memberIds.all(conversationId);
      const after = new Set(current.filter((userId) => !removed.has(userId)));
      for (const { userId } of added) after.add(userId);
      // A change that does not grow the group never fails on the cap, so a group already past a
      // lowered cap can still shrink.
      if (after.size > change.maxMembers && after.size > current.length) throw new GroupFullError(conversationId, change.maxMembers);
    }

    const stored = log.appendNext(event);
    const { seq } = stored;
    const at = stored.sentAt.getTime();
    memberCache.delete(conversationId);
    // Removals first, so a user both removed and added ends up rejoined at this seq.
    for (const userId of removed) leave.run(seq, conversationId, userId);
    for (const { userId, role } of added) {
      if (upsertMember.run(conversationId, userId, role, seq, at).changes > 0) log.moveReadMark(conversationId, userId, seq, at);
    }
    for (const { userId, role } of change.roles ?? []) setRole.run(role, conversationId, userId);
    if (change.title !== undefined) setTitle.run(change.title, conversationId);
    return stored;
  }

  return {
    async ensureDirectConversation(conversationId, userIds, createdAt) {
      // Every send addressed to a user (rather than a conversation) comes through here: the read
      // avoids a write transaction, and its fsync, once the conversation exists.
      const existing = select.get(conversationId);
      if (existing) return fromRow(existing);
      // IMMEDIATE: a concurrent creator in another process waits instead of failing on upgrade.
      return fromRow(createDirect.immediate(conversationId, userIds, createdAt.getTime()));
    },
    createGroup(group, event) {
      // Through the writer: the event's seq is taken in order with concurrent appends.
      return writer.submit(() => createGroupNow(group, event));
    },
    changeMembership(conversationId, change, event) {
      return writer.submit(() => changeMembershipNow(conversationId, change, event));
    },
    async getConversation(conversationId) {
      const row = select.get(conversationId);
      return row && fromRow(row);
    },
    async isMember(conversationId, userId) {
      return currentMembers(conversationId).set.has(userId);
    },
    async getMember(conversationId, userId) {
      const row = member.get(conversationId, userId);
      return row && memberFromRow(row);
    },
    async listMemberIds(conversationId) {
      // A copy: callers own what they are given (some sort it).
      return [...currentMembers(conversationId).ids];
    },
    async listMembers(conversationId) {
      return members.all(conversationId).map(memberFromRow);
    },
    async listGroups(userId) {
      return groups.all(userId).map(fromRow);
    },
    async listHeads(userId): Promise<ConversationHead[]> {
      return heads.all(userId).map((row) => ({ conversationId: row.conversation_id, lastSeq: row.last_seq }));
    },
    async listInbox(userId, options) {
      const { limit, after } = options;
      if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
      if (limit === 0) return [];
      const rows = inbox.all({
        userId,
        hasAfter: after ? 1 : 0,
        afterAt: after ? after.lastActivityAt.getTime() : 0,
        afterId: after ? after.conversationId : "",
        limit,
      });
      return rows.map((row): InboxRow => {
        const inboxRow = {
          conversation: fromRow(row),
          visibleLastSeq: row.visible_seq,
          readSeq: log.readSeq(row.conversation_id, userId),
          lastActivityAt: new Date(Number(row.activity_at)),
        };
        return row.left_seq === null ? inboxRow : { ...inboxRow, leftSeq: row.left_seq };
      });
    },
  } satisfies ConversationStore;
}
