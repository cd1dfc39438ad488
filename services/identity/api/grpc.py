"""The identity service's gRPC servicer: translate messages, call the use case."""

from __future__ import annotations

from qudao.common.v1 import ids_pb2, page_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity.service import IdentityService
from shared.context import current_principal
from shared.pagination import page_size


def _page_info(next_token: str, total: int) -> page_pb2.PageInfo:
    return page_pb2.PageInfo(next_page_token=next_token, total_size=total)


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def Login(self, request, context):
        return await self.service.login(request.username.strip().lower(), request.password)

    async def RefreshToken(self, request, context):
        return await self.service.refresh(request.refresh_token)

    async def Logout(self, request, context):
        await self.service.logout(request.refresh_token)
        return identity_pb2.LogoutResponse()

    async def WhoAmI(self, request, context):
        user = await self.service.who_am_i()
        principal = current_principal()
        return identity_pb2.WhoAmIResponse(user=user, principal=ids_pb2.Principal(
            subject=principal.subject, user_id=principal.user_id, username=principal.username,
            roles=sorted(principal.roles), org_unit_id=principal.org_unit_id,
            dealer_id=principal.dealer_id))

    async def CreateOrgUnit(self, request, context):
        return identity_pb2.CreateOrgUnitResponse(
            org_unit=await self.service.create_org_unit(request))

    async def GetOrgUnit(self, request, context):
        return identity_pb2.GetOrgUnitResponse(
            org_unit=await self.service.get_org_unit(request.id))

    async def ListOrgUnits(self, request, context):
        units, next_token, total = await self.service.list_org_units(
            request.kind, request.parent_id, page_size(request.page.page_size),
            request.page.page_token, request.query.strip(), request.status,
            request.region_code.strip())
        return identity_pb2.ListOrgUnitsResponse(org_units=units,
                                                 page=_page_info(next_token, total))

    async def UpdateOrgUnit(self, request, context):
        return identity_pb2.UpdateOrgUnitResponse(
            org_unit=await self.service.update_org_unit(request))

    async def ImportDealers(self, request, context):
        return await self.service.import_dealers(request)

    async def ListTags(self, request, context):
        tags, next_token, total = await self.service.list_tags(
            request.prefix, request.kind, page_size(request.page.page_size),
            request.page.page_token)
        return identity_pb2.ListTagsResponse(tags=tags, page=_page_info(next_token, total))

    async def AddDealerTags(self, request, context):
        return identity_pb2.AddDealerTagsResponse(dealers_updated=await self.service
                                                  .change_dealer_tags(list(request.dealer_ids),
                                                                      list(request.tags), True))

    async def RemoveDealerTags(self, request, context):
        return identity_pb2.RemoveDealerTagsResponse(dealers_updated=await self.service
                                                     .change_dealer_tags(list(request.dealer_ids),
                                                                         list(request.tags),
                                                                         False))

    async def QueryAudience(self, request, context):
        dealers, next_token, total = await self.service.query_audience(
            request.expression, request.include_inactive, page_size(request.page.page_size),
            request.page.page_token)
        return identity_pb2.QueryAudienceResponse(dealers=dealers,
                                                  page=_page_info(next_token, total))

    async def CreateUser(self, request, context):
        return identity_pb2.CreateUserResponse(user=await self.service.create_user(request))

    async def GetUser(self, request, context):
        return identity_pb2.GetUserResponse(user=await self.service.get_user(request.id))

    async def ListUsers(self, request, context):
        users, next_token, total = await self.service.list_users(
            request, page_size(request.page.page_size))
        return identity_pb2.ListUsersResponse(users=users, page=_page_info(next_token, total))

    async def UpdateUserRoles(self, request, context):
        return identity_pb2.UpdateUserRolesResponse(user=await self.service.update_user_roles(
            request.user_id, list(request.roles), request.reason))

    async def ChangePassword(self, request, context):
        await self.service.change_password(request.user_id, request.current_password,
                                           request.new_password)
        return identity_pb2.ChangePasswordResponse()

    async def DeactivateUser(self, request, context):
        return identity_pb2.DeactivateUserResponse(user=await self.service.deactivate_user(
            request.id, request.successor_user_id, request.reason))

    async def AssignDealers(self, request, context):
        return identity_pb2.AssignDealersResponse(
            assignments=await self.service.assign_dealers(request))

    async def UnassignDealers(self, request, context):
        return identity_pb2.UnassignDealersResponse(
            removed=await self.service.unassign_dealers(request))

    async def ListAssignments(self, request, context):
        rows, next_token, total = await self.service.list_assignments(
            request, page_size(request.page.page_size))
        return identity_pb2.ListAssignmentsResponse(assignments=rows,
                                                    page=_page_info(next_token, total))

    async def TransferAssignments(self, request, context):
        added = await self.service.transfer_assignments(request)
        return identity_pb2.TransferAssignmentsResponse(assignments=added,
                                                        transferred=len(added))

    async def ResolveScope(self, request, context):
        return await self.service.resolve_scope(request.user_id, request.action,
                                                request.product_line)

    async def ListAuditEvents(self, request, context):
        events, next_token, total = await self.service.list_audit_events(
            request, page_size(request.page.page_size))
        return identity_pb2.ListAuditEventsResponse(audit_events=events,
                                                    page=_page_info(next_token, total))
