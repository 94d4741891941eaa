export { checkPresenceUsers, createPresenceService, MAX_PRESENCE_USERS, toPresenceView } from "./presence-service.js";
export type { PresenceService, PresenceView } from "./presence-service.js";
