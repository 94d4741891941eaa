import type { Principal } from "../accounts/index.js";
import type { ConversationStore, EventBus } from "../ports/index.js";
import { ErrorReason, permissionDenied } from "../errors.js";

export interface TypingOptions {
  readonly conversations: ConversationStore;
  readonly bus: EventBus;
  /** A repeated "typing" from the same user in the same conversation within this window is dropped. */
  readonly throttleMs: number;
  /** How long an indicator lasts without a refresh. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

interface LastSent {
  typing: boolean;
  at: number;
}

export type TypingNotifier = ReturnType<typeof createTypingNotifier>;

/**
 * Typing indicators: never stored, sent only to the other members, at most one "typing" per user and
 * conversation per throttle window. Each carries an expiry, so a client that stops refreshing (or
 * vanishes) is not shown typing for ever.
 */
export function createTypingNotifier(options: TypingOptions) {
  const now = options.now ?? Date.now;
  const last = new Map<string, LastSent>();

  function prune(at: number): void {
    // Entries older than the indicator's life no longer throttle anything.
    if (last.size < 10_000) return;
    for (const [key, sent] of last) if (at - sent.at > options.ttlMs) last.delete(key);
  }

  return {
    async notify(principal: Principal, conversationId: string, typing: boolean): Promise<void> {
      if (!conversationId || !(await options.conversations.isMember(conversationId, principal.userId))) {
        throw permissionDenied(ErrorReason.NOT_A_MEMBER, "you are not a member of this conversation (or it does not exist)", "conversation_id");
      }
      const at = now();
      const key = `${principal.userId}\u0000${conversationId}`;
      const previous = last.get(key);
      if (previous && previous.typing === typing && (!typing || at - previous.at < options.throttleMs)) return;
      last.set(key, { typing, at });
      prune(at);
      const others = (await options.conversations.listMemberIds(conversationId)).filter((userId) => userId !== principal.userId);
      await options.bus.publish(others, { kind: "typing", conversationId, userId: principal.userId, typing, expiresAt: new Date(at + options.ttlMs) });
    },
  };
}
