import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PresenceStatus, type PresenceEventSchema } from "../../gen/chat/v1/messaging_pb.js";
import { ErrorReason, invalidArgument } from "../errors.js";
import type { PresenceRegistry, PresenceState } from "../ports/index.js";

export type PresenceView = MessageInitShape<typeof PresenceEventSchema>;

export const MAX_PRESENCE_USERS = 500;

export function toPresenceView(state: PresenceState): PresenceView {
  return {
    userId: state.userId,
    status: state.online ? PresenceStatus.ONLINE : PresenceStatus.OFFLINE,
    lastSeen: state.lastSeen && timestampFromDate(state.lastSeen),
  };
}

export function checkPresenceUsers(userIds: readonly string[], field: string): string[] {
  const unique = [...new Set(userIds)];
  if (unique.length > MAX_PRESENCE_USERS) {
    throw invalidArgument(ErrorReason.INVALID_ARGUMENT, `ask for at most ${MAX_PRESENCE_USERS} users at once`, field, { max: String(MAX_PRESENCE_USERS) });
  }
  return unique;
}

export type PresenceService = ReturnType<typeof createPresenceService>;

/** One-off presence look-ups; live presence rides on the device stream (see device-session). */
export function createPresenceService(registry: PresenceRegistry) {
  return {
    async getPresence(userIds: readonly string[]): Promise<PresenceView[]> {
      return (await registry.lookup(checkPresenceUsers(userIds, "user_ids"))).map(toPresenceView);
    },
  };
}
