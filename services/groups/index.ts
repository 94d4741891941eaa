export { createGroupsService } from "./groups-service.js";
export type { GroupsService, GroupsServiceOptions, GroupView } from "./groups-service.js";
