import type { Database } from "better-sqlite3";
import type { ConversationHead, ConversationKindName, ConversationRecord, ConversationStore } from "../../services/ports/index.js";

interface ConversationRow {
  conversation_id: string;
  kind: string;
  title: string;
  created_at: bigint;
  last_seq: bigint;
}

function fromRow(row: ConversationRow): ConversationRecord {
  return {
    conversationId: row.conversation_id,
    kind: row.kind as ConversationKindName,
    title: row.title,
    createdAt: new Date(Number(row.created_at)),
    lastSeq: row.last_seq,
  };
}

/** Expects `db.defaultSafeIntegers(true)`: seqs are read as bigint. */
export function createSqliteConversations(db: Database): ConversationStore {
  const select = db.prepare<[string], ConversationRow>(
    `SELECT conversation_id, kind, title, created_at, last_seq FROM conversations WHERE conversation_id = ?`,
  );
  const insertDirect = db.prepare<[string, number]>(
    `INSERT OR IGNORE INTO conversations (conversation_id, kind, title, created_at, last_seq) VALUES (?, 'direct', '', ?, 0)`,
  );
  const insertMember = db.prepare<[string, string, number]>(
    `INSERT OR IGNORE INTO members (conversation_id, user_id, role, joined_seq, joined_at) VALUES (?, ?, 'member', 0, ?)`,
  );
  const isMember = db
    .prepare<[string, string], bigint>(`SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ? AND left_seq IS NULL`)
    .pluck();
  const memberIds = db
    .prepare<[string], string>(`SELECT user_id FROM members WHERE conversation_id = ? AND left_seq IS NULL ORDER BY user_id`)
    .pluck();
  const heads = db.prepare<[string], { conversation_id: string; last_seq: bigint }>(
    `SELECT c.conversation_id, c.last_seq
       FROM members m JOIN conversations c ON c.conversation_id = m.conversation_id
      WHERE m.user_id = ? AND m.left_seq IS NULL
      ORDER BY c.conversation_id`,
  );

  const createDirect = db.transaction((conversationId: string, userIds: readonly [string, string], createdAt: number) => {
    insertDirect.run(conversationId, createdAt);
    for (const userId of userIds) insertMember.run(conversationId, userId, createdAt);
    return select.get(conversationId)!;
  });

  return {
    async ensureDirectConversation(conversationId, userIds, createdAt) {
      // Every send addressed to a user (rather than a conversation) comes through here: the read
      // avoids a write transaction, and its fsync, once the conversation exists.
      const existing = select.get(conversationId);
      if (existing) return fromRow(existing);
      // IMMEDIATE: a concurrent creator in another process waits instead of failing on upgrade.
      return fromRow(createDirect.immediate(conversationId, userIds, createdAt.getTime()));
    },
    async getConversation(conversationId) {
      const row = select.get(conversationId);
      return row && fromRow(row);
    },
    async isMember(conversationId, userId) {
      return isMember.get(conversationId, userId) !== undefined;
    },
    async listMemberIds(conversationId) {
      return memberIds.all(conversationId);
    },
    async listHeads(userId): Promise<ConversationHead[]> {
      return heads.all(userId).map((row) => ({ conversationId: row.conversation_id, lastSeq: row.last_seq }));
    },
  } satisfies ConversationStore;
}
