export type ConversationKindName = "direct" | "group";

export interface ConversationRecord {
  readonly conversationId: string;
  readonly kind: ConversationKindName;
  readonly title: string;
  readonly createdAt: Date;
  /** Highest seq stored so far (0 when empty). */
  readonly lastSeq: bigint;
}

export interface ConversationHead {
  readonly conversationId: string;
  readonly lastSeq: bigint;
}

/** Conversations and who is in them. */
export interface ConversationStore {
  /**
   * Returns the direct conversation with this id, creating it with both users as members if it does
   * not exist. Safe under concurrent calls for the same pair.
   */
  ensureDirectConversation(conversationId: string, userIds: readonly [string, string], createdAt: Date): Promise<ConversationRecord>;
  getConversation(conversationId: string): Promise<ConversationRecord | undefined>;
  /** Whether the user is a current member. */
  isMember(conversationId: string, userId: string): Promise<boolean>;
  /** Current members' user ids. */
  listMemberIds(conversationId: string): Promise<string[]>;
  /** The last seq of every conversation the user is currently a member of. */
  listHeads(userId: string): Promise<ConversationHead[]>;
}
