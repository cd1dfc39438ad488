"""What the identity use cases share: the base with their collaborators and caches,
the audit trail every change writes, who may see what (the principal as it is now, its
scope, the visible org units), and the row → message converters.

Every change runs in one unit of work that also writes its audit row and its event
(outbox), so either all of it happens or none of it."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from qudao.identity.v1 import identity_pb2
from sqlalchemy import event, or_, select

from services.identity.adapters.orm import AssignmentRow, AuditRow, OrgUnitRow, UserRow
from services.identity.domain.rules import (
    ALL_DEALER_ROLES,
    DEALER_ROLES,
    HQ_ROLES,
    OrgKind,
    Role,
    Tier,
    erp_may,
    scope_for,
)
from shared.auth import TokenIssuer
from shared.bus.outbox import Outbox
from shared.context import Principal, current_principal, current_request_id
from shared.db import Database
from shared.errors import NotFound, PermissionDenied
from shared.pagination import decode_page_token, encode_page_token
from shared.revocation import RevocationList

ROLE_TO_PROTO = {role: identity_pb2.Role.Value(
    "ROLE_SERVICE_ERP" if role == Role.ERP else f"ROLE_{role.name}") for role in Role}
PROTO_TO_ROLE = {value: role for role, value in ROLE_TO_PROTO.items()}
KIND_TO_PROTO = {OrgKind.HQ: identity_pb2.ORG_UNIT_KIND_HQ,
                 OrgKind.REGION: identity_pb2.ORG_UNIT_KIND_REGION,
                 OrgKind.DEALER: identity_pb2.ORG_UNIT_KIND_DEALER}
PROTO_TO_KIND = {value: kind for kind, value in KIND_TO_PROTO.items()}
TIER_TO_PROTO = {Tier.PLATFORM: identity_pb2.DEALER_TIER_PLATFORM,
                 Tier.ONE: identity_pb2.DEALER_TIER_ONE, Tier.TWO: identity_pb2.DEALER_TIER_TWO}
PROTO_TO_TIER = {value: tier for tier, value in TIER_TO_PROTO.items()}
STATUS_TO_PROTO = {"active": identity_pb2.ORG_UNIT_STATUS_ACTIVE,
                   "suspended": identity_pb2.ORG_UNIT_STATUS_SUSPENDED,
                   "closed": identity_pb2.ORG_UNIT_STATUS_CLOSED}
PROTO_TO_STATUS = {value: name for name, value in STATUS_TO_PROTO.items()}


def aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stamp(field, moment: datetime | None) -> None:
    if moment is not None:
        field.FromDatetime(aware(moment))


def org_unit_to_proto(row: OrgUnitRow) -> identity_pb2.OrgUnit:
    unit = identity_pb2.OrgUnit(
        id=row.id, kind=KIND_TO_PROTO[OrgKind(row.kind)], name=row.name,
        parent_id=row.parent_id or "", credit_code=row.credit_code or "",
        tier=TIER_TO_PROTO.get(row.tier, identity_pb2.DEALER_TIER_UNSPECIFIED),
        platform_dealer_id=row.platform_dealer_id or "",
        division_codes=list(row.division_codes or []), product_lines=list(row.product_lines or []),
        status=STATUS_TO_PROTO.get(row.status, identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED),
        region_code=row.region_code, derived_tags=list(row.derived_tags or []),
        custom_tags=list(row.custom_tags or []),
        shared_with_platform=bool(row.shared_with_platform), city_code=row.city_code or "",
    )
    stamp(unit.created_at, row.created_at)
    stamp(unit.updated_at, row.updated_at)
    return unit


def user_to_proto(row: UserRow, dealer_id: str) -> identity_pb2.User:
    user = identity_pb2.User(
        id=row.id, username=row.username, display_name=row.display_name,
        roles=[ROLE_TO_PROTO[Role(role)] for role in row.roles], org_unit_id=row.org_unit_id,
        dealer_id=dealer_id, active=row.active,
    )
    stamp(user.created_at, row.created_at)
    stamp(user.last_login_at, row.last_login_at)
    locked = aware(row.locked_until)
    if locked is not None and locked > datetime.now(UTC):
        stamp(user.locked_until, locked)
    stamp(user.deactivated_at, row.deactivated_at)
    return user


def assignment_to_proto(row: AssignmentRow) -> identity_pb2.Assignment:
    assignment = identity_pb2.Assignment(manager_user_id=row.manager_user_id,
                                         dealer_id=row.dealer_id, product_line=row.product_line,
                                         assigned_by=row.assigned_by or "")
    stamp(assignment.assigned_at, row.created_at)
    return assignment


def unit_snapshot(row: OrgUnitRow) -> dict:
    return {"id": row.id, "kind": row.kind, "name": row.name, "parent_id": row.parent_id,
            "credit_code": row.credit_code, "tier": row.tier,
            "platform_dealer_id": row.platform_dealer_id, "region_code": row.region_code,
            "division_codes": list(row.division_codes or []),
            "product_lines": list(row.product_lines or []), "status": row.status,
            "city_code": row.city_code, "shared_with_platform": bool(row.shared_with_platform),
            "derived_tags": list(row.derived_tags or []),
            "custom_tags": list(row.custom_tags or [])}


def user_snapshot(row: UserRow) -> dict:
    # Never the password hash.
    return {"id": row.id, "username": row.username, "display_name": row.display_name,
            "roles": list(row.roles), "org_unit_id": row.org_unit_id, "active": row.active}


def paginate(items: list, token: str, size: int) -> tuple[list, str, int]:
    offset = decode_page_token(token)
    chunk = items[offset:offset + size]
    more = offset + size < len(items)
    return chunk, encode_page_token(offset + size) if more else "", len(items)


class Visibility:
    """Which org units a principal may see: ``everything``, or its own unit, the dealers in
    its scope, and (for HQ staff) the non-dealer structure."""

    def __init__(self, everything: bool, dealer_ids: frozenset[str], own_unit: str,
                 structure: bool) -> None:
        self.everything = everything
        self.dealer_ids = dealer_ids
        self.own_unit = own_unit
        self.structure = structure

    def sees(self, row: OrgUnitRow | None) -> bool:
        if row is None:
            return False
        if self.everything or row.id == self.own_unit or row.id in self.dealer_ids:
            return True
        return self.structure and row.kind != OrgKind.DEALER

    def clause(self):
        if self.everything:
            return None
        clauses = [OrgUnitRow.id.in_(self.dealer_ids | {self.own_unit})]
        if self.structure:
            clauses.append(OrgUnitRow.kind != OrgKind.DEALER)
        return or_(*clauses)


class UseCaseBase:
    """The collaborators and caches every identity use case works with."""

    def __init__(self, db: Database, outbox: Outbox, issuer: TokenIssuer,
                 hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.outbox = outbox
        self.issuer = issuer
        self.hasher = hasher or PasswordHasher()
        # Checked against when the username is unknown, at the same cost as a real hash,
        # so response times do not tell which usernames exist.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # Users whose sessions are revoked, known in this process at once; every other
        # process learns of it from the UserDeactivated event (shared/revocation.py).
        self.revoked_users: set[str] = set()
        # Signed-out tokens (and, after a restart, deactivations) from identity's own
        # events, replayed at start like every other process does.
        self.revocations = RevocationList()
        # ResolveScope answers, valid while no audited change has committed since they
        # were computed: every change writes an audit row, whose commit bumps the
        # generation (other identity replicas bump it on the change's event).
        self._scope_generation = 0
        self._scope_cache: dict[tuple[str, str, str], tuple[int, float, object]] = {}
        self._facts_cache: tuple[int, list[tuple]] | None = None

    # ---- audit and caches ------------------------------------------------------------

    def invalidate_scopes(self) -> None:
        self._scope_generation += 1
        self._scope_cache.clear()
        self._facts_cache = None

    def _after_change_commit(self, _session) -> None:
        self.invalidate_scopes()

    async def _audit(self, session, action: str, target_type: str, target_id: str,
                     before: dict | None, after: dict | None, reason: str = "") -> None:
        sync_session = session.sync_session
        if not event.contains(sync_session, "after_commit", self._after_change_commit):
            event.listen(sync_session, "after_commit", self._after_change_commit, once=True)
        session.add(AuditRow(
            id=str(uuid.uuid4()), occurred_at=datetime.now(UTC),
            actor=current_principal().subject, action=action, target_type=target_type,
            target_id=target_id,
            before_json=json.dumps(before, ensure_ascii=False, sort_keys=True) if before else "",
            after_json=json.dumps(after, ensure_ascii=False, sort_keys=True) if after else "",
            reason=reason[:500], request_id=current_request_id()[:64]))

    async def _dealer_of(self, session, org_unit_id: str) -> str:
        unit = await session.get(OrgUnitRow, org_unit_id)
        return unit.id if unit is not None and unit.kind == OrgKind.DEALER else ""

    async def _current(self, session, principal: Principal) -> Principal:
        """The principal with its roles and org unit as they are now, not as the token
        says: a role change or deactivation narrows the scope at once."""
        if not principal.user_id:
            return principal
        user = await session.get(UserRow, principal.user_id)
        if user is None or not user.active:
            return Principal(subject=principal.subject, user_id=principal.user_id)
        return self._principal(user, await self._dealer_of(session, user.org_unit_id))

    async def _visibility(self, session, principal: Principal,
                          action: str = "org.read") -> Visibility:
        principal = await self._current(session, principal)
        scope = await self._scope(session, principal, action)
        structure = bool(principal.roles & HQ_ROLES) or principal.has_role(Role.ERP)
        return Visibility(scope.all_dealers, scope.dealer_ids, principal.org_unit_id, structure)

    async def _visible_unit(self, session, org_unit_id: str, principal: Principal,
                            what: str = "org unit") -> OrgUnitRow:
        row = await session.get(OrgUnitRow, org_unit_id) if org_unit_id else None
        if not (await self._visibility(session, principal)).sees(row):
            raise NotFound(f"{what} {org_unit_id} not found")
        return row

    def _principal(self, user: UserRow, dealer_id: str) -> Principal:
        return Principal(subject=f"user:{user.id}", user_id=user.id, username=user.username,
                         roles=frozenset(user.roles), org_unit_id=user.org_unit_id,
                         dealer_id=dealer_id)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _require_admin(self, principal: Principal, what: str) -> None:
        if not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied(f"only HQ admins {what}")

    # ---- scope: the dealers a principal may act on -----------------------------------

    async def _region_subtree(self, session, region_id: str) -> set[str]:
        regions = (await session.execute(select(OrgUnitRow.id, OrgUnitRow.parent_id).where(
            OrgUnitRow.kind == OrgKind.REGION))).all()
        children: dict[str, list[str]] = {}
        for unit_id, parent_id in regions:
            children.setdefault(parent_id or "", []).append(unit_id)
        subtree, stack = set(), [region_id]
        while stack:
            current = stack.pop()
            if current in subtree:
                continue
            subtree.add(current)
            stack.extend(children.get(current, []))
        return subtree

    async def _scope(self, session, principal: Principal, action: str = "",
                     product_line: str = ""):
        roles = frozenset(principal.roles)
        if roles & ALL_DEALER_ROLES or (Role.ERP in roles and erp_may(action)):
            return scope_for(roles, "", frozenset(), frozenset(), frozenset(), action)
        assigned: frozenset[str] = frozenset()
        region_dealers: frozenset[str] = frozenset()
        sub_dealers: frozenset[str] = frozenset()
        if Role.CHANNEL_MANAGER in roles:
            query = select(AssignmentRow.dealer_id).where(
                AssignmentRow.manager_user_id == principal.user_id)
            if product_line:
                query = query.where(AssignmentRow.product_line == product_line)
            assigned = frozenset((await session.scalars(query)).all())
        if Role.REGION_MANAGER in roles and principal.org_unit_id:
            subtree = await self._region_subtree(session, principal.org_unit_id)
            region_dealers = frozenset((await session.scalars(
                select(OrgUnitRow.id).where(OrgUnitRow.parent_id.in_(subtree),
                                            OrgUnitRow.kind == OrgKind.DEALER))).all())
        if roles & DEALER_ROLES and principal.dealer_id:
            sub_dealers = frozenset((await session.scalars(
                select(OrgUnitRow.id).where(
                    OrgUnitRow.platform_dealer_id == principal.dealer_id,
                    OrgUnitRow.shared_with_platform.is_(True)))).all())
        return scope_for(roles, principal.dealer_id, assigned, region_dealers, sub_dealers,
                         action)
