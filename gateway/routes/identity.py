"""Org units and users."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.protojson import enum_number, to_json
from gateway.routes.common import Body, Caller, Page, Services
from shared.errors import InvalidArgument

router = APIRouter(prefix="/api/v1", tags=["identity"])

RoleName = Literal["hq_admin", "region_manager", "channel_manager", "finance",
                   "customer_service", "dealer_admin", "dealer_sales", "service_erp"]


class OrgUnitBody(Body):
    kind: Literal["region", "dealer"]
    name: str = Field(min_length=1, max_length=200)
    parent_id: str = ""
    region_code: str = ""
    credit_code: str = ""
    tier: Literal["platform", "one", "two", ""] = ""
    platform_dealer_id: str = ""
    division_codes: list[str] = Field(default_factory=list)
    product_lines: list[str] = Field(default_factory=list)


class UserBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    display_name: str = Field(default="", max_length=100)
    roles: list[RoleName] = Field(min_length=1)
    org_unit_id: str = Field(min_length=1)


class DeactivateBody(Body):
    successor_user_id: str = ""
    reason: str = Field(default="", max_length=500)


@router.post("/org-units", status_code=201)
async def create_org_unit(body: OrgUnitBody, caller: Caller, services: Services) -> dict:
    request = identity_pb2.CreateOrgUnitRequest(
        kind=enum_number(identity_pb2.OrgUnitKind.DESCRIPTOR, body.kind),
        name=body.name, parent_id=body.parent_id, region_code=body.region_code,
        credit_code=body.credit_code,
        tier=enum_number(identity_pb2.DealerTier.DESCRIPTOR, body.tier) if body.tier else 0,
        platform_dealer_id=body.platform_dealer_id, division_codes=body.division_codes,
        product_lines=body.product_lines)
    return to_json((await call(services.identity.CreateOrgUnit, request)).org_unit)


@router.get("/org-units")
async def list_org_units(caller: Caller, services: Services, page: Page,
                         kind: Literal["hq", "region", "dealer", ""] = "",
                         parent_id: str = "") -> dict:
    request = identity_pb2.ListOrgUnitsRequest(
        kind=enum_number(identity_pb2.OrgUnitKind.DESCRIPTOR, kind) if kind else 0,
        parent_id=parent_id, page=page)
    return to_json(await call(services.identity.ListOrgUnits, request))


@router.get("/org-units/{org_unit_id}")
async def get_org_unit(org_unit_id: str, caller: Caller, services: Services) -> dict:
    response = await call(services.identity.GetOrgUnit,
                          identity_pb2.GetOrgUnitRequest(id=org_unit_id))
    return to_json(response.org_unit)


@router.post("/users", status_code=201)
async def create_user(body: UserBody, caller: Caller, services: Services) -> dict:
    roles = []
    for index, name in enumerate(body.roles):
        number = enum_number(identity_pb2.Role.DESCRIPTOR, name)
        if number is None:
            raise InvalidArgument.field(f"roles[{index}]", f"unknown role {name}")
        roles.append(number)
    request = identity_pb2.CreateUserRequest(
        username=body.username, password=body.password, display_name=body.display_name,
        roles=roles, org_unit_id=body.org_unit_id)
    return to_json((await call(services.identity.CreateUser, request)).user)


@router.get("/users/{user_id}")
async def get_user(user_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.identity.GetUser,
                               identity_pb2.GetUserRequest(id=user_id))).user)


@router.post("/users/{user_id}/deactivate")
async def deactivate_user(user_id: str, body: DeactivateBody, caller: Caller,
                          services: Services) -> dict:
    request = identity_pb2.DeactivateUserRequest(
        id=user_id, successor_user_id=body.successor_user_id, reason=body.reason)
    return to_json((await call(services.identity.DeactivateUser, request)).user)
