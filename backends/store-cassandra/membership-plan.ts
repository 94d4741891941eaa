import { GroupFullError, type MembershipChange, type NewGroup, type NewMessage } from "../../services/ports/index.js";
import type { MemberState } from "./conversation-log.js";

export interface MembershipPlan {
  /** Member rows to write, whole, in the change's conditional batch. */
  readonly writes: readonly MemberState[];
  /** Users who (re)joined: their read watermark starts at the event. */
  readonly joined: readonly MemberState[];
  /** Rows whose user-index entry changes (joins and leaves). */
  readonly indexed: readonly MemberState[];
  /** Current members once the change is applied. */
  readonly memberCount: number;
}

export interface PlanInput {
  readonly conversationId: string;
  /** The stored rows of every user the change names (current or former members); others have none. */
  readonly rows: ReadonlyMap<string, MemberState>;
  /** Current members before the change. */
  readonly memberCount: number;
  readonly change: MembershipChange;
  /** The seq the change's event takes, and its sentAt. */
  readonly seq: bigint;
  readonly at: Date;
}

/** The users a change names: the only member rows it needs to read. */
export function touchedUsers(change: MembershipChange): string[] {
  return [...new Set([...(change.remove ?? []), ...(change.add ?? []).map((a) => a.userId), ...(change.roles ?? []).map((r) => r.userId)])];
}

/**
 * Computes what a change does to the member rows it names, exactly as the SQLite engine applies it:
 * removals first (so a user both removed and added ends up rejoined at this seq), then adds (a former
 * member's row is reset, a current member's left alone), then roles (current members only). Throws
 * GroupFullError if the change would grow the group past `maxMembers`; a change that does not grow it
 * never fails on the cap, so a group already past a lowered cap can still shrink. Pure: the caller
 * makes it atomic by conditioning the batch on the membership it was computed from.
 */
export function planMembershipChange(input: PlanInput): MembershipPlan {
  const { conversationId, rows, memberCount, change, seq, at } = input;
  const current = (userId: string) => {
    const row = rows.get(userId);
    return row !== undefined && row.leftSeq === undefined;
  };
  const removed = new Set((change.remove ?? []).filter(current));
  const after = new Set<string>();
  for (const { userId } of change.add ?? []) if (!current(userId) || removed.has(userId)) after.add(userId);
  const count = memberCount - removed.size + after.size;
  if (change.maxMembers !== undefined && count > change.maxMembers && count > memberCount) {
    throw new GroupFullError(conversationId, change.maxMembers);
  }

  const next = new Map<string, MemberState>(rows);
  const changed = new Set<string>();
  const joined = new Set<string>();
  const indexed = new Set<string>();
  for (const userId of removed) {
    next.set(userId, { ...rows.get(userId)!, leftSeq: seq, leftAt: at, changedSeq: seq });
    changed.add(userId);
    indexed.add(userId);
  }
  for (const { userId, role } of change.add ?? []) {
    const row = next.get(userId);
    if (row !== undefined && row.leftSeq === undefined) continue;
    next.set(userId, { userId, role, joinedSeq: seq, joinedAt: at, changedSeq: seq });
    changed.add(userId);
    joined.add(userId);
    indexed.add(userId);
  }
  for (const { userId, role } of change.roles ?? []) {
    const row = next.get(userId);
    if (row === undefined || row.leftSeq !== undefined) continue;
    next.set(userId, { ...row, role, changedSeq: seq });
    changed.add(userId);
  }
  const pick = (users: Set<string>) => [...users].map((userId) => next.get(userId)!);
  return { writes: pick(changed), joined: pick(joined), indexed: pick(indexed), memberCount: count };
}

/** A new group's member rows, all joined at seq 1; refuses an event of another conversation and a member listed twice. */
export function initialMembers(group: NewGroup, event: NewMessage): MemberState[] {
  const { conversationId } = group;
  if (event.conversationId !== conversationId) {
    throw new RangeError(`the event belongs to ${event.conversationId}, not to the new group ${conversationId}`);
  }
  const userIds = group.members.map((m) => m.userId);
  if (new Set(userIds).size !== userIds.length) throw new RangeError(`group ${conversationId} lists a member twice`);
  return group.members.map(({ userId, role }) => ({ userId, role, joinedSeq: 1n, joinedAt: group.createdAt, changedSeq: 1n }));
}
