"""Org units and dealers, dealer import, tags and audiences, users and roles,
channel-manager assignments, scope and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from google.protobuf import field_mask_pb2
from pydantic import Field
from qudao.common.v1 import files_pb2
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.import_jobs import run_import
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    Body,
    Caller,
    IdempotencyKey,
    IfMatch,
    Page,
    Services,
    idempotent,
    tagged,
)
from gateway.uploads import IMPORT_BODY, read_upload
from shared.audience import count_part
from shared.errors import FieldViolation, InvalidArgument, collect

router = APIRouter(prefix="/api/v1", tags=["identity"])

RoleName = Literal["hq_admin", "region_manager", "channel_manager", "finance",
                   "customer_service", "dealer_admin", "dealer_sales", "service_erp"]
TierName = Literal["platform", "one", "two"]
StatusName = Literal["active", "suspended", "closed"]


def _tier(name: str) -> int:
    return enum_number(identity_pb2.DealerTier.DESCRIPTOR, name) or 0 if name else 0


def _roles(names: list[str], field: str = "roles") -> list[int]:
    numbers, problems = [], []
    for index, name in enumerate(names):
        number = enum_number(identity_pb2.Role.DESCRIPTOR, name)
        if number is None:
            problems.append(FieldViolation(f"{field}[{index}]", f"unknown role {name}"))
        numbers.append(number or 0)
    collect(problems)
    return numbers


class OrgUnitBody(Body):
    kind: Literal["region", "dealer"]
    name: str = Field(min_length=1, max_length=200)
    parent_id: str = ""
    region_code: str = Field(default="", max_length=32)
    credit_code: str = Field(default="", max_length=18)
    tier: Literal["platform", "one", "two", ""] = ""
    platform_dealer_id: str = ""
    division_codes: list[str] = Field(default_factory=list, max_length=500)
    product_lines: list[str] = Field(default_factory=list, max_length=100)
    city_code: str = Field(default="", max_length=6)
    shared_with_platform: bool = Field(
        default=False, description="sub-dealers: the platform dealer's staff see its data")
    custom_tags: list[str] = Field(default_factory=list, max_length=100)


class OrgUnitPatch(Body):
    """Only the fields present are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent_id: str | None = None
    region_code: str | None = Field(default=None, max_length=32)
    credit_code: str | None = Field(default=None, max_length=18)
    tier: TierName | None = None
    platform_dealer_id: str | None = None
    division_codes: list[str] | None = Field(default=None, max_length=500)
    product_lines: list[str] | None = Field(default=None, max_length=100)
    status: StatusName | None = None
    city_code: str | None = Field(default=None, max_length=6)
    shared_with_platform: bool | None = None
    reason: str = Field(default="", max_length=500)


class UserBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    display_name: str = Field(default="", max_length=100)
    roles: list[RoleName] = Field(min_length=1)
    org_unit_id: str = Field(min_length=1)


class RolesBody(Body):
    roles: list[RoleName] = Field(min_length=1)
    reason: str = Field(default="", max_length=500)


class DeactivateBody(Body):
    successor_user_id: str = ""
    reason: str = Field(default="", max_length=500)


class PasswordResetBody(Body):
    new_password: str = Field(min_length=1, max_length=256)


class TagsBody(Body):
    dealer_ids: list[str] = Field(min_length=1, max_length=5000)
    tags: list[str] = Field(min_length=1, max_length=100)


class AudienceBody(Body):
    """``expression`` is a tree: {"term": {"tag": "华东-上海-一级-A系列"}}, or one of
    {"all_of": [...]}, {"any_of": [...]}, {"not": {...}}. Terms: tag, tag_prefix,
    region_code, tier (platform/one/two), product_line, division_code."""

    expression: dict[str, Any]
    include_inactive: bool = False
    page_size: int = Field(default=0, ge=0, le=500)
    page_token: str = Field(default="", max_length=200)


class AssignBody(Body):
    manager_user_id: str = Field(min_length=1)
    dealer_ids: list[str] = Field(min_length=1, max_length=5000)
    product_lines: list[str] = Field(default_factory=list, description="empty: all lines")
    reason: str = Field(default="", max_length=500)


class TransferBody(Body):
    from_manager_user_id: str = Field(min_length=1)
    to_manager_user_id: str = Field(min_length=1)
    dealer_ids: list[str] = Field(default_factory=list, description="empty: all")
    product_lines: list[str] = Field(default_factory=list, description="empty: all")
    reason: str = Field(default="", max_length=500)


MAX_TERM_CHARS = 200


def audience_expression(value: Any, path: str = "expression", depth: int = 0,
                        parts: list[int] | None = None) -> identity_pb2.AudienceExpression:
    """The JSON tree as the service's message, bounded here as the service bounds it
    (depth, parts, text): a tree too deep for protobuf would otherwise fail in transit."""
    parts = parts if parts is not None else [0]
    count_part(path, depth, parts)
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidArgument.field(path, "must be an object with exactly one of term, all_of,"
                                          " any_of, not")
    (key, inner), = value.items()
    expression = identity_pb2.AudienceExpression()
    if key == "term":
        if not isinstance(inner, dict) or len(inner) != 1:
            raise InvalidArgument.field(f"{path}.term", "must name exactly one attribute")
        (kind, term_value), = inner.items()
        if kind not in identity_pb2.AudienceTerm.DESCRIPTOR.fields_by_name:
            raise InvalidArgument.field(f"{path}.term", f"unknown attribute {kind!r}")
        if not isinstance(term_value, str):
            raise InvalidArgument.field(f"{path}.term.{kind}", "must be a string")
        if len(term_value) > MAX_TERM_CHARS:
            raise InvalidArgument.field(f"{path}.term.{kind}",
                                        f"at most {MAX_TERM_CHARS} characters")
        if kind == "tier":
            number = enum_number(identity_pb2.DealerTier.DESCRIPTOR, term_value)
            if number is None:
                raise InvalidArgument.field(f"{path}.term.tier", "must be platform, one or two")
            expression.term.tier = number
        else:
            setattr(expression.term, kind, term_value)
    elif key in ("all_of", "any_of"):
        if not isinstance(inner, list):
            raise InvalidArgument.field(f"{path}.{key}", "must be a list")
        getattr(expression, key).expressions.extend(
            audience_expression(item, f"{path}.{key}[{i}]", depth + 1, parts)
            for i, item in enumerate(inner))
        if not inner:
            getattr(expression, key).SetInParent()
    elif key == "not":
        expression.negate.CopyFrom(audience_expression(inner, f"{path}.not", depth + 1, parts))
    else:
        raise InvalidArgument.field(path, f"unknown operator {key!r}")
    return expression


# ---- org units and dealers ----------------------------------------------------------


@router.post("/org-units", status_code=201)
async def create_org_unit(body: OrgUnitBody, caller: Caller, services: Services,
                          key: IdempotencyKey) -> dict:
    request = identity_pb2.CreateOrgUnitRequest(
        kind=enum_number(identity_pb2.OrgUnitKind.DESCRIPTOR, body.kind),
        name=body.name, parent_id=body.parent_id, region_code=body.region_code,
        credit_code=body.credit_code, tier=_tier(body.tier),
        platform_dealer_id=body.platform_dealer_id, division_codes=body.division_codes,
        product_lines=body.product_lines, city_code=body.city_code,
        shared_with_platform=body.shared_with_platform, custom_tags=body.custom_tags)
    return to_json((await call(services.identity.CreateOrgUnit, request,
                               metadata=idempotent(key))).org_unit)


@router.get("/org-units")
async def list_org_units(caller: Caller, services: Services, page: Page,
                         kind: Literal["hq", "region", "dealer", ""] = "",
                         parent_id: str = "", query: str = "",
                         status: Literal["active", "suspended", "closed", ""] = "",
                         region_code: str = "") -> dict:
    request = identity_pb2.ListOrgUnitsRequest(
        kind=enum_number(identity_pb2.OrgUnitKind.DESCRIPTOR, kind) if kind else 0,
        parent_id=parent_id, page=page, query=query, region_code=region_code,
        status=enum_number(identity_pb2.OrgUnitStatus.DESCRIPTOR, status) if status else 0)
    return to_json(await call(services.identity.ListOrgUnits, request))


@router.get("/org-units/{org_unit_id}")
async def get_org_unit(org_unit_id: str, caller: Caller, services: Services,
                       response: Response) -> dict:
    answer = await call(services.identity.GetOrgUnit,
                        identity_pb2.GetOrgUnitRequest(id=org_unit_id))
    return tagged(response, to_json(answer.org_unit))


@router.patch("/org-units/{org_unit_id}")
async def update_org_unit(org_unit_id: str, body: OrgUnitPatch, caller: Caller,
                          services: Services, version: IfMatch, response: Response) -> dict:
    """Change the named fields only; with ``If-Match`` (the ETag of a GET) only while the
    unit is still that version (412 otherwise)."""
    unit = identity_pb2.OrgUnit()
    paths = []
    for name in body.model_fields_set - {"reason"}:
        value = getattr(body, name)
        if value is None:
            raise InvalidArgument.field(name, "must not be null")
        paths.append(name)
        if name == "tier":
            unit.tier = _tier(value)
        elif name == "status":
            unit.status = enum_number(identity_pb2.OrgUnitStatus.DESCRIPTOR, value)
        elif isinstance(value, list):
            getattr(unit, name).extend(value)
        else:
            setattr(unit, name, value)
    request = identity_pb2.UpdateOrgUnitRequest(
        id=org_unit_id, org_unit=unit, update_mask=field_mask_pb2.FieldMask(paths=sorted(paths)),
        reason=body.reason, expected_version=version)
    return tagged(response, to_json((await call(services.identity.UpdateOrgUnit,
                                                request)).org_unit))


@router.post("/dealers/import", openapi_extra=IMPORT_BODY)
async def import_dealers(request: Request, caller: Caller, services: Services,
                         filename: Annotated[str, Query(max_length=200)] = "",
                         dry_run: bool = False,
                         encoding: Literal["utf8", "gbk", "gb18030", ""] = ""):
    """Create or update dealers from a CSV/XLSX file (the raw body, or a form upload in the
    field ``file``). All or
    nothing: when any row fails nothing is written, ``accepted`` is false and ``errors``
    lists every failing row (Chinese and English). Columns: name, credit_code, tier,
    region_code, division_codes, product_lines, and optionally platform_credit_code,
    city_code, status, shared_with_platform, custom_tags (or their Chinese headers).
    A file over 1 MiB (or ``Prefer: respond-async``) is imported as a job: 202 and
    ``/api/v1/import-jobs/{id}``."""
    upload = await read_upload(request, filename)
    return await run_import(request, caller, "dealers", upload, lambda timeout: call(
        services.identity.ImportDealers, identity_pb2.ImportDealersRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run, encoding=enum_number(files_pb2.TextEncoding.DESCRIPTOR, encoding)
            or 0 if encoding else 0), timeout))


# ---- tags and audiences -------------------------------------------------------------


@router.get("/tags")
async def list_tags(caller: Caller, services: Services, page: Page, prefix: str = "",
                    kind: Literal["derived", "custom", ""] = "") -> dict:
    return to_json(await call(services.identity.ListTags, identity_pb2.ListTagsRequest(
        prefix=prefix, page=page,
        kind=enum_number(identity_pb2.TagKind.DESCRIPTOR, kind) if kind else 0)))


@router.post("/dealer-tags")
async def add_dealer_tags(body: TagsBody, caller: Caller, services: Services) -> dict:
    """Add custom tags to dealers (existing tags are kept)."""
    return to_json(await call(services.identity.AddDealerTags, identity_pb2.AddDealerTagsRequest(
        dealer_ids=body.dealer_ids, tags=body.tags)))


@router.post("/dealer-tags/remove")
async def remove_dealer_tags(body: TagsBody, caller: Caller, services: Services) -> dict:
    """Remove custom tags from dealers; derived tags cannot be removed."""
    return to_json(await call(services.identity.RemoveDealerTags,
                              identity_pb2.RemoveDealerTagsRequest(dealer_ids=body.dealer_ids,
                                                                   tags=body.tags)))


@router.post("/audiences/query")
async def query_audience(body: AudienceBody, caller: Caller, services: Services) -> dict:
    """Dealers matching a tag expression, within the caller's scope; ``page.total_size``
    is the audience size."""
    from qudao.common.v1 import page_pb2

    request = identity_pb2.QueryAudienceRequest(
        expression=audience_expression(body.expression), include_inactive=body.include_inactive,
        page=page_pb2.PageRequest(page_size=body.page_size, page_token=body.page_token))
    return to_json(await call(services.identity.QueryAudience, request))


# ---- users and roles ----------------------------------------------------------------


@router.post("/users", status_code=201)
async def create_user(body: UserBody, caller: Caller, services: Services,
                      key: IdempotencyKey) -> dict:
    request = identity_pb2.CreateUserRequest(
        username=body.username, password=body.password, display_name=body.display_name,
        roles=_roles(body.roles), org_unit_id=body.org_unit_id)
    return to_json((await call(services.identity.CreateUser, request,
                               metadata=idempotent(key))).user)


@router.get("/users")
async def list_users(caller: Caller, services: Services, page: Page, org_unit_id: str = "",
                     dealer_id: str = "", role: RoleName | Literal[""] = "",
                     include_inactive: bool = False, query: str = "") -> dict:
    return to_json(await call(services.identity.ListUsers, identity_pb2.ListUsersRequest(
        org_unit_id=org_unit_id, dealer_id=dealer_id, include_inactive=include_inactive,
        query=query, page=page, role=_roles([role], "role")[0] if role else 0)))


@router.get("/users/{user_id}")
async def get_user(user_id: str, caller: Caller, services: Services,
                   response: Response) -> dict:
    """The user; its ETag is the version ``PUT /users/{id}/roles`` compares."""
    return tagged(response, to_json((await call(services.identity.GetUser,
                                                identity_pb2.GetUserRequest(id=user_id))).user))


@router.put("/users/{user_id}/roles")
async def update_user_roles(user_id: str, body: RolesBody, caller: Caller,
                            services: Services, version: IfMatch,
                            response: Response) -> dict:
    """Replace the user's roles. A dealer admin may only grant dealer roles to its own
    dealer's staff. With ``If-Match`` (the user's ETag) only while no other change of
    roles came first (412 otherwise)."""
    return tagged(response, to_json((await call(
        services.identity.UpdateUserRoles, identity_pb2.UpdateUserRolesRequest(
            user_id=user_id, roles=_roles(body.roles), reason=body.reason,
            expected_version=version))).user))


@router.post("/users/{user_id}/password", status_code=204)
async def reset_password(user_id: str, body: PasswordResetBody, caller: Caller,
                         services: Services) -> None:
    """Set another user's password (HQ admin, or the user's dealer admin); the user's
    sessions end."""
    await call(services.identity.ChangePassword, identity_pb2.ChangePasswordRequest(
        user_id=user_id, new_password=body.new_password))


@router.post("/users/{user_id}/deactivate")
async def deactivate_user(user_id: str, body: DeactivateBody, caller: Caller,
                          services: Services) -> dict:
    """Deactivate a user: its tokens stop working at once everywhere; a channel manager's
    dealers pass to ``successor_user_id`` (required while it holds assignments)."""
    request = identity_pb2.DeactivateUserRequest(
        id=user_id, successor_user_id=body.successor_user_id, reason=body.reason)
    return to_json((await call(services.identity.DeactivateUser, request)).user)


# ---- assignments --------------------------------------------------------------------


@router.post("/assignments")
async def assign_dealers(body: AssignBody, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.identity.AssignDealers, identity_pb2.AssignDealersRequest(
        manager_user_id=body.manager_user_id, dealer_ids=body.dealer_ids,
        product_lines=body.product_lines, reason=body.reason)))


@router.post("/assignments/remove")
async def unassign_dealers(body: AssignBody, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.identity.UnassignDealers,
                              identity_pb2.UnassignDealersRequest(
                                  manager_user_id=body.manager_user_id,
                                  dealer_ids=body.dealer_ids, product_lines=body.product_lines,
                                  reason=body.reason)))


@router.get("/assignments")
async def list_assignments(caller: Caller, services: Services, page: Page,
                           manager_user_id: str = "", dealer_id: str = "",
                           product_line: str = "") -> dict:
    return to_json(await call(services.identity.ListAssignments,
                              identity_pb2.ListAssignmentsRequest(
                                  manager_user_id=manager_user_id, dealer_id=dealer_id,
                                  product_line=product_line, page=page)))


@router.post("/assignments/transfer")
async def transfer_assignments(body: TransferBody, caller: Caller, services: Services) -> dict:
    """Hand a channel manager's dealers to a successor in one transaction."""
    return to_json(await call(services.identity.TransferAssignments,
                              identity_pb2.TransferAssignmentsRequest(
                                  from_manager_user_id=body.from_manager_user_id,
                                  to_manager_user_id=body.to_manager_user_id,
                                  dealer_ids=body.dealer_ids, product_lines=body.product_lines,
                                  reason=body.reason)))


# ---- scope and audit ----------------------------------------------------------------


@router.get("/scope")
async def resolve_scope(caller: Caller, services: Services, action: str = "",
                        user_id: str = "", product_line: str = "") -> dict:
    """Which dealers the caller (or, for HQ admins, ``user_id``) may act on."""
    return to_json(await call(services.identity.ResolveScope, identity_pb2.ResolveScopeRequest(
        user_id=user_id, action=action, product_line=product_line)))


@router.get("/audit-events")
async def list_audit_events(caller: Caller, services: Services, page: Page, actor: str = "",
                            target_type: str = "", target_id: str = "", action: str = "",
                            occurred_after: datetime | None = None,
                            occurred_before: datetime | None = None) -> dict:
    """Who changed what and when, with before/after snapshots, newest first (HQ admins
    only). Times are RFC 3339; ``occurred_after`` is inclusive, ``occurred_before`` not."""
    request = identity_pb2.ListAuditEventsRequest(
        actor=actor, target_type=target_type, target_id=target_id, action=action, page=page)
    for name, value in (("occurred_after", occurred_after),
                        ("occurred_before", occurred_before)):
        if value is not None:
            if value.tzinfo is None:
                raise InvalidArgument.field(name, "needs a time zone, e.g. 2026-01-01T00:00:00Z")
            getattr(request, name).FromDatetime(value.astimezone(UTC))
    return to_json(await call(services.identity.ListAuditEvents, request))
