"""The identity service's gRPC servicer: translate messages, call the use case."""

from __future__ import annotations

from qudao.common.v1 import ids_pb2, page_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity.service import IdentityService
from shared.context import current_principal
from shared.pagination import page_size


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
            request.page.page_token)
        return identity_pb2.ListOrgUnitsResponse(
            org_units=units, page=page_pb2.PageInfo(next_page_token=next_token, total_size=total))

    async def CreateUser(self, request, context):
        return identity_pb2.CreateUserResponse(user=await self.service.create_user(request))

    async def GetUser(self, request, context):
        return identity_pb2.GetUserResponse(user=await self.service.get_user(request.id))

    async def DeactivateUser(self, request, context):
        return identity_pb2.DeactivateUserResponse(user=await self.service.deactivate_user(
            request.id, request.successor_user_id, request.reason))

    async def ResolveScope(self, request, context):
        return await self.service.resolve_scope(request.user_id, request.action)
