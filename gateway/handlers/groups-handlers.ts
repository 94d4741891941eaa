import type { ServiceImpl } from "@connectrpc/connect";
import type { GroupsService as GroupsServiceDesc } from "../../gen/chat/v1/groups_pb.js";
import type { GroupsService } from "../../services/groups/index.js";
import type { Authenticate } from "../authenticate.js";

export function groupsHandlers(groups: GroupsService, authenticate: Authenticate): ServiceImpl<typeof GroupsServiceDesc> {
  return {
    async createGroup(request, context) {
      return { group: await groups.createGroup(await authenticate(context), request) };
    },
    async addMembers(request, context) {
      return { group: await groups.addMembers(await authenticate(context), request.groupId, request.userIds) };
    },
    async removeMember(request, context) {
      return { group: await groups.removeMember(await authenticate(context), request.groupId, request.userId) };
    },
    async leaveGroup(request, context) {
      await groups.leaveGroup(await authenticate(context), request.groupId);
      return {};
    },
    async renameGroup(request, context) {
      return { group: await groups.renameGroup(await authenticate(context), request.groupId, request.name) };
    },
    async setMemberRole(request, context) {
      return { group: await groups.setMemberRole(await authenticate(context), request.groupId, request.userId, request.role) };
    },
    async getGroup(request, context) {
      return { group: await groups.getGroup(await authenticate(context), request.groupId) };
    },
    async listMyGroups(_request, context) {
      return { groups: await groups.listMyGroups(await authenticate(context)) };
    },
  };
}
