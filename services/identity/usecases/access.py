"""Who may see and act on what, for every identity use case: the principal with its
roles as they are now (not as its token says), the dealers in its scope, the org units it
may see, and the audit entry every change writes. Plain functions over the unit of
work."""

from __future__ import annotations

import json
from collections.abc import Iterable

from services.identity.domain.model import AuditEntry, OrgUnit, Visibility
from services.identity.domain.org import subtree
from services.identity.domain.rules import (
    ALL_DEALER_ROLES,
    DEALER_ROLES,
    HQ_ROLES,
    OrgKind,
    Role,
    ScopeAnswer,
    erp_may,
    scope_for,
)
from services.identity.usecases.ports import IdentityUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FieldViolation, NotFound, PermissionDenied
from shared.ids import IdSource


def require_admin(who: Principal, what: str) -> None:
    if not who.has_role(Role.HQ_ADMIN):
        raise PermissionDenied(f"only HQ admins {what}")


async def as_now(uow: IdentityUnitOfWork, who: Principal) -> Principal:
    """The principal with its roles and org unit as they are now: a role change or a
    deactivation narrows what it may see at once. A service principal stays as it is."""
    if not who.user_id:
        return who
    user = await uow.users.get(who.user_id)
    if user is None or not user.active:
        return Principal(subject=who.subject, user_id=who.user_id)
    return user.principal


async def scope_of(uow: IdentityUnitOfWork, who: Principal, action: str = "",
                   product_line: str = "") -> ScopeAnswer:
    """The dealers ``who`` (as it is now) may act on for ``action``."""
    roles = frozenset(who.roles)
    if roles & ALL_DEALER_ROLES or (Role.ERP in roles and erp_may(action)):
        return scope_for(roles, "", frozenset(), frozenset(), frozenset(), action)
    assigned: frozenset[str] = frozenset()
    region_dealers: frozenset[str] = frozenset()
    sub_dealers: frozenset[str] = frozenset()
    if Role.CHANNEL_MANAGER in roles:
        assigned = await uow.assignments.dealer_ids_of(who.user_id, product_line)
    if Role.REGION_MANAGER in roles and who.org_unit_id:
        regions = {r.id: r.parent_id for r in await uow.org_units.regions()}
        region_dealers = await uow.org_units.dealer_ids_under(
            subtree(who.org_unit_id, regions))
    if roles & DEALER_ROLES and who.dealer_id:
        sub_dealers = await uow.org_units.shared_sub_dealer_ids(who.dealer_id)
    return scope_for(roles, who.dealer_id, assigned, region_dealers, sub_dealers, action)


async def visibility(uow: IdentityUnitOfWork, who: Principal,
                     action: str = "org.read") -> Visibility:
    now = await as_now(uow, who)
    scope = await scope_of(uow, now, action)
    structure = bool(now.roles & HQ_ROLES) or now.has_role(Role.ERP)
    return Visibility(scope.all_dealers, scope.dealer_ids, now.org_unit_id, structure)


async def visible_unit(uow: IdentityUnitOfWork, who: Principal, org_unit_id: str,
                       what: str = "org unit") -> OrgUnit:
    """The org unit, if ``who`` may see it; NOT_FOUND otherwise (never revealing that it
    exists)."""
    unit = await uow.org_units.get(org_unit_id) if org_unit_id else None
    if unit is None or not (await visibility(uow, who)).sees(unit):
        raise NotFound(f"{what} {org_unit_id} not found")
    return unit


async def visible_dealers(uow: IdentityUnitOfWork, who: Principal, dealer_ids: Iterable[str],
                          field: str = "dealer_ids") -> list[OrgUnit]:
    """The named dealers (each once), every one visible to ``who``; the first that is not
    is NOT_FOUND, naming its place in the request."""
    seen = await visibility(uow, who)
    dealers: dict[str, OrgUnit] = {}
    for index, dealer_id in enumerate(dealer_ids):
        if dealer_id in dealers:
            continue
        unit = await uow.org_units.get(dealer_id)
        if unit is None or unit.kind != OrgKind.DEALER or not seen.sees(unit):
            raise NotFound(f"dealer {dealer_id} not found",
                           violations=[FieldViolation(f"{field}[{index}]", "not found")])
        dealers[dealer_id] = unit
    return list(dealers.values())


def _json(value: dict | None) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


async def audit(uow: IdentityUnitOfWork, action: str, target_type: str, target_id: str,
                before: dict | None, after: dict | None, reason: str = "", *,
                who: Principal, clock: Clock, ids: IdSource) -> None:
    """Write the change's audit entry in the change's own transaction (the request id is
    stamped by the audit log from the request context)."""
    await uow.audit.add(AuditEntry(
        id=ids.new_id(), occurred_at=clock.now(), actor=who.subject, action=action,
        target_type=target_type, target_id=target_id, before_json=_json(before),
        after_json=_json(after), reason=reason[:500]))
