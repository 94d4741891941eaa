import type { NewMessage, StoredMessage } from "./message-store.js";

export type ConversationKindName = "direct" | "group";
export type GroupRoleName = "owner" | "admin" | "member";

export interface ConversationRecord {
  readonly conversationId: string;
  readonly kind: ConversationKindName;
  readonly title: string;
  readonly createdAt: Date;
  /** Highest seq stored so far (0 when empty). */
  readonly lastSeq: bigint;
}

/** The last seq a user may see in a conversation: the conversation's last seq, or for a former member the seq of their leaving. */
export interface ConversationHead {
  readonly conversationId: string;
  readonly lastSeq: bigint;
}

export interface MemberRecord {
  readonly conversationId: string;
  readonly userId: string;
  readonly role: GroupRoleName;
  /** Seq of the event that added the member (0 for both members of a direct conversation). */
  readonly joinedSeq: bigint;
  /** Seq of the event that removed the member; absent while a member. */
  readonly leftSeq?: bigint;
  readonly joinedAt: Date;
}

export interface NewGroup {
  readonly conversationId: string;
  readonly title: string;
  readonly createdAt: Date;
  readonly members: readonly { readonly userId: string; readonly role: GroupRoleName }[];
}

/**
 * One membership change, applied atomically with the system event that records it: the event takes
 * the conversation's next seq, and that seq becomes the joined/left seq of the members it concerns.
 */
export interface MembershipChange {
  /** Users who join (or rejoin: a former member's row is reset). Their read watermark starts at the event's seq. */
  readonly add?: readonly { readonly userId: string; readonly role: GroupRoleName }[];
  /** Current members who leave: their left seq becomes the event's seq. */
  readonly remove?: readonly string[];
  readonly roles?: readonly { readonly userId: string; readonly role: GroupRoleName }[];
  readonly title?: string;
  /** Checked inside the same transaction: if current members would exceed it, nothing is stored and GroupFullError is thrown. */
  readonly maxMembers?: number;
}

export class GroupFullError extends Error {
  override readonly name = "GroupFullError";
  constructor(
    readonly conversationId: string,
    readonly maxMembers: number,
  ) {
    super(`conversation ${conversationId} would have more than ${maxMembers} members`);
  }
}

export interface InboxRow {
  readonly conversation: ConversationRecord;
  /** The head the user may see (see ConversationHead). */
  readonly visibleLastSeq: bigint;
  readonly readSeq: bigint;
  /** sentAt of the last visible message, or the conversation's createdAt if it has none. */
  readonly lastActivityAt: Date;
  /** Set when the user has left. */
  readonly leftSeq?: bigint;
}

export interface InboxPageOptions {
  readonly limit: number;
  /** Continue after this row (exclusive), in the inbox order: lastActivityAt desc, then conversationId desc. */
  readonly after?: { readonly lastActivityAt: Date; readonly conversationId: string };
}

/** Conversations and who is in them. */
export interface ConversationStore {
  /**
   * Returns the direct conversation with this id, creating it with both users as members if it does
   * not exist. Safe under concurrent calls for the same pair.
   */
  ensureDirectConversation(conversationId: string, userIds: readonly [string, string], createdAt: Date): Promise<ConversationRecord>;
  /**
   * Creates a group and appends `event` (its `conversationId` is the group's) as seq 1 in one transaction;
   * every member joins at seq 1 with a read watermark of 1.
   */
  createGroup(group: NewGroup, event: NewMessage): Promise<{ conversation: ConversationRecord; event: StoredMessage }>;
  /** Applies the change and appends `event` in one transaction, ordered with concurrent appends. */
  changeMembership(conversationId: string, change: MembershipChange, event: NewMessage): Promise<StoredMessage>;
  getConversation(conversationId: string): Promise<ConversationRecord | undefined>;
  /** Whether the user is a current member. */
  isMember(conversationId: string, userId: string): Promise<boolean>;
  /** The user's membership row, current or former. */
  getMember(conversationId: string, userId: string): Promise<MemberRecord | undefined>;
  /** Current members' user ids. */
  listMemberIds(conversationId: string): Promise<string[]>;
  /** Current members, oldest first (by joinedSeq, then userId). */
  listMembers(conversationId: string): Promise<MemberRecord[]>;
  /** Groups the user is currently a member of. */
  listGroups(userId: string): Promise<ConversationRecord[]>;
  /** The visible head of every conversation the user is or was in. */
  listHeads(userId: string): Promise<ConversationHead[]>;
  /** The user's conversations (current and former) in inbox order. */
  listInbox(userId: string, options: InboxPageOptions): Promise<InboxRow[]>;
}
