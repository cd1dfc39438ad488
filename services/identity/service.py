"""Identity use cases: org units and dealers, import, tags and audiences, users and roles,
login and sessions, assignments and hand-over, scope resolution, audit trail.

Every change runs in one unit of work that also writes its audit row and its event
(outbox), so either all of it happens or none of it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from qudao.common.v1 import files_pb2
from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.identity.adapters import dealer_file
from services.identity.adapters.orm import (
    AssignmentRow,
    AuditRow,
    OrgUnitRow,
    RefreshTokenRow,
    UserRow,
)
from services.identity.domain import audience as audience_rules
from services.identity.domain import dealer_import
from services.identity.domain.org import (
    DealerFields,
    Node,
    dealer_violations,
    derived_tags,
    home_city,
    tag_violations,
    tree_violations,
)
from services.identity.domain.rules import (
    ALL_DEALER_ROLES,
    DEALER_ROLES,
    HQ_ROLES,
    LoginState,
    OrgKind,
    Role,
    Tier,
    erp_may,
    password_violations,
    scope_for,
    username_violations,
)
from shared.auth import TokenIssuer
from shared.bus.outbox import Outbox
from shared.context import Principal, current_principal, current_request_id
from shared.db import Database
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    collect,
)
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
REFRESH_TTL = timedelta(days=14)
UPDATABLE_PATHS = frozenset({"name", "parent_id", "credit_code", "tier", "platform_dealer_id",
                             "division_codes", "product_lines", "status", "region_code",
                             "city_code", "shared_with_platform"})
REVOCATION_MEMORY = timedelta(days=1)
SCOPE_CACHE_SECONDS = 60.0
SCOPE_CACHE_ENTRIES = 10_000


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(field, moment: datetime | None) -> None:
    if moment is not None:
        field.FromDatetime(_aware(moment))


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
    _stamp(unit.created_at, row.created_at)
    _stamp(unit.updated_at, row.updated_at)
    return unit


def user_to_proto(row: UserRow, dealer_id: str) -> identity_pb2.User:
    user = identity_pb2.User(
        id=row.id, username=row.username, display_name=row.display_name,
        roles=[ROLE_TO_PROTO[Role(role)] for role in row.roles], org_unit_id=row.org_unit_id,
        dealer_id=dealer_id, active=row.active,
    )
    _stamp(user.created_at, row.created_at)
    _stamp(user.last_login_at, row.last_login_at)
    locked = _aware(row.locked_until)
    if locked is not None and locked > datetime.now(UTC):
        _stamp(user.locked_until, locked)
    _stamp(user.deactivated_at, row.deactivated_at)
    return user


def assignment_to_proto(row: AssignmentRow) -> identity_pb2.Assignment:
    assignment = identity_pb2.Assignment(manager_user_id=row.manager_user_id,
                                         dealer_id=row.dealer_id, product_line=row.product_line,
                                         assigned_by=row.assigned_by or "")
    _stamp(assignment.assigned_at, row.created_at)
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


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _page(items: list, token: str, size: int) -> tuple[list, str, int]:
    offset = decode_page_token(token)
    chunk = items[offset:offset + size]
    more = offset + size < len(items)
    return chunk, encode_page_token(offset + size) if more else "", len(items)


def _roles(values: Iterable[int], field: str = "roles") -> tuple[list[Role], list[FieldViolation]]:
    roles, problems = [], []
    for index, value in enumerate(values):
        role = PROTO_TO_ROLE.get(value)
        if role is None:
            problems.append(FieldViolation(f"{field}[{index}]", "unknown role"))
        elif role not in roles:
            roles.append(role)
    if not roles and not problems:
        problems.append(FieldViolation(field, "at least one role is required"))
    return roles, problems


def _roles_fit_unit(roles: Iterable[str], kind: str) -> bool:
    roles = set(roles)
    return roles <= DEALER_ROLES if kind == OrgKind.DEALER else not roles & DEALER_ROLES


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


class IdentityService:
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

    # ---- bootstrap -------------------------------------------------------------------

    async def ensure_bootstrap(self, admin_username: str, admin_password: str) -> None:
        """On an empty database, create HQ and its first admin (from configuration)."""
        async with self.db.unit_of_work() as session:
            if (await session.scalar(select(func.count()).select_from(OrgUnitRow))) > 0:
                return
            now = datetime.now(UTC)
            hq = OrgUnitRow(id=str(uuid.uuid4()), kind=OrgKind.HQ, name="总部", parent_id=None,
                            credit_code=None, tier="", platform_dealer_id=None, region_code="",
                            division_codes=[], product_lines=[], status="active", created_at=now,
                            city_code="", derived_tags=[], custom_tags=[],
                            shared_with_platform=False)
            session.add(hq)
            await session.flush()
            password_hash = await asyncio.to_thread(self.hasher.hash, admin_password)
            session.add(UserRow(id=str(uuid.uuid4()), username=admin_username,
                                display_name="HQ administrator", password_hash=password_hash,
                                roles=[Role.HQ_ADMIN], org_unit_id=hq.id, active=True,
                                failed_logins=0, created_at=now))

    async def load_revocations(self) -> None:
        """Users deactivated recently enough that a token of theirs may still be valid."""
        since = datetime.now(UTC) - REVOCATION_MEMORY
        async with self.db.sessions() as session:
            ids = (await session.scalars(select(UserRow.id).where(
                UserRow.active.is_(False), UserRow.deactivated_at >= since))).all()
        self.revoked_users.update(ids)

    # ---- shared helpers --------------------------------------------------------------

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

    async def _region_names(self, session) -> dict[str, str]:
        rows = (await session.execute(select(OrgUnitRow.region_code, OrgUnitRow.name).where(
            OrgUnitRow.kind == OrgKind.REGION))).all()
        return {code: name for code, name in rows}

    @staticmethod
    def _retag(row: OrgUnitRow, region_names: dict[str, str]) -> None:
        if row.kind != OrgKind.DEALER:
            row.derived_tags = []
            return
        row.derived_tags = derived_tags(region_names.get(row.region_code, row.region_code),
                                        home_city(row.division_codes, row.city_code), row.tier,
                                        row.product_lines)

    async def _tree(self, session, *ids: str | None) -> dict[str, Node]:
        """The non-dealer structure plus the named units and the sub-dealers of any
        dealer among them: all that tree_violations needs."""
        wanted = {i for i in ids if i}
        rows = (await session.scalars(select(OrgUnitRow).where(or_(
            OrgUnitRow.kind != OrgKind.DEALER, OrgUnitRow.id.in_(wanted),
            OrgUnitRow.platform_dealer_id.in_(wanted))))).all()
        return {r.id: Node(r.id, r.kind, r.parent_id, r.tier, r.platform_dealer_id)
                for r in rows}

    # ---- sessions --------------------------------------------------------------------

    def _principal(self, user: UserRow, dealer_id: str) -> Principal:
        return Principal(subject=f"user:{user.id}", user_id=user.id, username=user.username,
                         roles=frozenset(user.roles), org_unit_id=user.org_unit_id,
                         dealer_id=dealer_id)

    async def _issue(self, session, user: UserRow, dealer_id: str) -> tuple[str, str]:
        access, _ = self.issuer.issue(self._principal(user, dealer_id))
        refresh = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session.add(RefreshTokenRow(token_hash=_hash_token(refresh), user_id=user.id,
                                    expires_at=now + REFRESH_TTL, revoked_at=None, created_at=now))
        return access, refresh

    async def login(self, username: str, password: str) -> identity_pb2.LoginResponse:
        violations = []
        if not username:
            violations.append(FieldViolation("username", "is required"))
        if not password:
            violations.append(FieldViolation("password", "is required"))
        collect(violations)
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            user = await session.scalar(select(UserRow).where(UserRow.username == username))
            if user is None:
                # Spend the same time as a real check so usernames cannot be probed.
                await asyncio.to_thread(self._verify, self._dummy_hash, password)
                raise Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")
            state = LoginState(user.failed_logins, _aware(user.locked_until))
            if state.is_locked(now):
                raise Unauthenticated(
                    "too many failed logins; try again later", reason="LOCKED_OUT",
                    metadata={"locked_until": state.locked_until.isoformat()})
            if not user.active:
                raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
            if not await asyncio.to_thread(self._verify, user.password_hash, password):
                # The failure is committed with the block; the error is raised after it.
                failed = state.after_failure(now)
                user.failed_logins = failed.failed_attempts
                user.locked_until = failed.locked_until
                response = None
            else:
                user.failed_logins = 0
                user.locked_until = None
                user.last_login_at = now
                dealer_id = await self._dealer_of(session, user.org_unit_id)
                access, refresh = await self._issue(session, user, dealer_id)
                response = identity_pb2.LoginResponse(
                    access_token=access, refresh_token=refresh,
                    expires_in_seconds=self.issuer.ttl_seconds,
                    user=user_to_proto(user, dealer_id))
        if response is None:
            raise Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")
        return response

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def refresh(self, refresh_token: str) -> identity_pb2.RefreshTokenResponse:
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            row = await session.get(RefreshTokenRow, _hash_token(refresh_token))
            if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
                raise Unauthenticated("refresh token is invalid or expired",
                                      reason="REFRESH_INVALID")
            user = await session.get(UserRow, row.user_id)
            if user is None or not user.active:
                raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
            row.revoked_at = now  # rotation: each refresh token works once
            dealer_id = await self._dealer_of(session, user.org_unit_id)
            access, refresh = await self._issue(session, user, dealer_id)
        return identity_pb2.RefreshTokenResponse(access_token=access, refresh_token=refresh,
                                                 expires_in_seconds=self.issuer.ttl_seconds)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token and, when the caller sent its access token too, that
        token everywhere at once (SessionRevoked)."""
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        principal = current_principal()
        async with self.db.unit_of_work() as session:
            row = await session.get(RefreshTokenRow, _hash_token(refresh_token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            if principal.token_id and principal.user_id:
                await self.outbox.record(session, "session", "revoked", events_pb2.SessionRevoked(
                    user_id=principal.user_id, token_id=principal.token_id), principal.user_id)
        if principal.token_id and principal.user_id:
            self.revocations.revoke_token(principal.token_id)

    async def who_am_i(self) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.sessions() as session:
            user = await session.get(UserRow, principal.user_id)
            if user is None:
                raise NotFound("user not found")
            return user_to_proto(user, await self._dealer_of(session, user.org_unit_id))

    def is_revoked(self, principal: Principal) -> bool:
        return principal.user_id in self.revoked_users or self.revocations.is_revoked(principal)

    # ---- org units -------------------------------------------------------------------

    def _require_admin(self, principal: Principal, what: str) -> None:
        if not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied(f"only HQ admins {what}")

    async def create_org_unit(self, request: identity_pb2.CreateOrgUnitRequest):
        principal = current_principal()
        self._require_admin(principal, "change the org structure")
        kind = PROTO_TO_KIND.get(request.kind)
        violations: list[FieldViolation] = []
        if kind is None or kind == OrgKind.HQ:
            violations.append(FieldViolation("kind", "must be REGION or DEALER"))
        name = request.name.strip()
        if not name:
            violations.append(FieldViolation("name", "is required"))
        tier = PROTO_TO_TIER.get(request.tier)
        if kind == OrgKind.DEALER:
            fields = DealerFields(
                name=name, credit_code=request.credit_code.strip().upper(),
                tier=tier.value if tier else "", division_codes=tuple(request.division_codes),
                product_lines=tuple(request.product_lines), city_code=request.city_code.strip(),
                custom_tags=tuple(dict.fromkeys(request.custom_tags)))
            violations += [v for v in dealer_violations(fields) if v.field != "name"]
        elif kind == OrgKind.REGION and not request.region_code.strip():
            violations.append(FieldViolation("region_code", "is required for a region"))
        collect(violations)
        async with self.db.unit_of_work() as session:
            parent_id = request.parent_id or None
            if parent_id is None:
                if kind == OrgKind.DEALER:
                    parent = await session.scalar(select(OrgUnitRow).where(
                        OrgUnitRow.kind == OrgKind.REGION,
                        OrgUnitRow.region_code == request.region_code.strip()))
                    if parent is None:
                        raise InvalidArgument.field("region_code", "must name an existing region")
                else:
                    parent = await session.scalar(select(OrgUnitRow).where(
                        OrgUnitRow.kind == OrgKind.HQ))
                parent_id = parent.id
            new_id = str(uuid.uuid4())
            node = Node(new_id, kind, parent_id, tier.value if tier else "",
                        request.platform_dealer_id or None)
            tree = await self._tree(session, parent_id, request.platform_dealer_id)
            collect(tree_violations(node, tree))
            parent = await session.get(OrgUnitRow, parent_id)
            if kind == OrgKind.REGION:
                region_code = request.region_code.strip()
                if await session.scalar(select(OrgUnitRow.id).where(
                        OrgUnitRow.kind == OrgKind.REGION, OrgUnitRow.region_code == region_code)):
                    raise AlreadyExists(f"region {region_code} exists", violations=[
                        FieldViolation("region_code", "already used by another region")])
            else:
                region_code = parent.region_code
            row = OrgUnitRow(
                id=new_id, kind=kind, name=name, parent_id=parent_id,
                credit_code=request.credit_code.strip().upper() or None,
                tier=tier.value if tier and kind == OrgKind.DEALER else "",
                platform_dealer_id=request.platform_dealer_id or None,
                region_code=region_code, division_codes=list(request.division_codes),
                product_lines=list(dict.fromkeys(request.product_lines)), status="active",
                created_at=datetime.now(UTC), city_code=request.city_code.strip(),
                custom_tags=list(dict.fromkeys(request.custom_tags)), derived_tags=[],
                shared_with_platform=bool(request.shared_with_platform
                                          and request.platform_dealer_id))
            self._retag(row, await self._region_names(session))
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")]
                                    ) from exc
            unit = org_unit_to_proto(row)
            await self._audit(session, "org_unit.create", "org_unit", row.id, None,
                              unit_snapshot(row))
            await self.outbox.record(session, "org_unit", "created",
                                     events_pb2.OrgUnitCreated(org_unit=unit), row.id)
        return unit

    async def get_org_unit(self, org_unit_id: str) -> identity_pb2.OrgUnit:
        async with self.db.sessions() as session:
            return org_unit_to_proto(await self._visible_unit(session, org_unit_id,
                                                              current_principal()))

    async def list_org_units(self, kind_value: int, parent_id: str, size: int, token: str,
                             query_text: str = "", status_value: int = 0, region_code: str = ""):
        offset = decode_page_token(token)
        async with self.db.sessions() as session:
            visibility = await self._visibility(session, current_principal())
            query = select(OrgUnitRow).order_by(OrgUnitRow.created_at, OrgUnitRow.id)
            if kind_value:
                kind = PROTO_TO_KIND.get(kind_value)
                if kind is None:
                    raise InvalidArgument.field("kind", "unknown org unit kind")
                query = query.where(OrgUnitRow.kind == kind)
            if parent_id:
                query = query.where(OrgUnitRow.parent_id == parent_id)
            if status_value:
                status = PROTO_TO_STATUS.get(status_value)
                if status is None:
                    raise InvalidArgument.field("status", "unknown status")
                query = query.where(OrgUnitRow.status == status)
            if region_code:
                query = query.where(OrgUnitRow.region_code == region_code)
            if query_text:
                query = query.where(or_(OrgUnitRow.name.contains(query_text, autoescape=True),
                                        OrgUnitRow.credit_code == query_text.upper()))
            if (clause := visibility.clause()) is not None:
                query = query.where(clause)
            total = await session.scalar(select(func.count()).select_from(
                query.order_by(None).subquery()))
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([org_unit_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def update_org_unit(self, request: identity_pb2.UpdateOrgUnitRequest):
        principal = current_principal()
        paths = list(dict.fromkeys(request.update_mask.paths))
        violations = [FieldViolation(f"update_mask.paths[{i}]", f"{p!r} cannot be updated")
                      for i, p in enumerate(paths) if p not in UPDATABLE_PATHS]
        if not paths:
            violations.append(FieldViolation("update_mask", "name at least one field"))
        collect(violations)
        new = request.org_unit
        async with self.db.unit_of_work() as session:
            row = await self._visible_unit(session, request.id, principal)
            self._require_admin(principal, "change the org structure")
            before = unit_snapshot(row)
            previous = org_unit_to_proto(row)
            values = dict(before)
            for path in paths:
                if path == "tier":
                    tier = PROTO_TO_TIER.get(new.tier)
                    values["tier"] = tier.value if tier else ""
                elif path == "status":
                    values["status"] = PROTO_TO_STATUS.get(new.status, "")
                elif path in ("division_codes", "product_lines"):
                    values[path] = list(dict.fromkeys(getattr(new, path)))
                elif path in ("parent_id", "platform_dealer_id"):
                    values[path] = getattr(new, path) or None
                elif path == "credit_code":
                    values[path] = new.credit_code.strip().upper() or None
                elif path == "shared_with_platform":
                    values[path] = new.shared_with_platform
                else:
                    values[path] = getattr(new, path).strip()
            problems: list[FieldViolation] = []
            if not values["name"]:
                problems.append(FieldViolation("name", "is required"))
            if row.kind == OrgKind.DEALER:
                problems += dealer_violations(DealerFields(
                    name=values["name"], credit_code=values["credit_code"] or "",
                    tier=values["tier"], division_codes=tuple(values["division_codes"]),
                    product_lines=tuple(values["product_lines"]), city_code=values["city_code"],
                    status=values["status"]))
                if "region_code" in paths:
                    problems.append(FieldViolation(
                        "region_code", "a dealer's region follows its parent_id"))
            else:
                for path in ("credit_code", "tier", "platform_dealer_id", "division_codes",
                             "product_lines", "city_code", "shared_with_platform"):
                    if path in paths and values[path] != before[path]:
                        problems.append(FieldViolation(path, "only dealers have this field"))
                if row.kind == OrgKind.REGION and not values["region_code"]:
                    problems.append(FieldViolation("region_code", "is required for a region"))
                if values["status"] not in ("active", "suspended", "closed"):
                    problems.append(FieldViolation("status", "must be active, suspended or closed"))
            if row.kind == OrgKind.HQ and "parent_id" in paths and values["parent_id"]:
                problems.append(FieldViolation("parent_id", "HQ has no parent"))
            collect(problems)
            tree = await self._tree(session, row.id, values["parent_id"],
                                    values["platform_dealer_id"])
            node = Node(row.id, row.kind, values["parent_id"], values["tier"],
                        values["platform_dealer_id"])
            collect(tree_violations(node, tree))
            if (row.kind == OrgKind.REGION and values["region_code"] != row.region_code
                    and await session.scalar(select(OrgUnitRow.id).where(
                        OrgUnitRow.kind == OrgKind.REGION,
                        OrgUnitRow.region_code == values["region_code"]))):
                    raise AlreadyExists("region code in use", violations=[
                        FieldViolation("region_code", "already used by another region")])
            old_region_code = row.region_code
            for key in ("name", "parent_id", "credit_code", "tier", "platform_dealer_id",
                        "division_codes", "product_lines", "status", "city_code"):
                setattr(row, key, values[key])
            row.shared_with_platform = bool(values["shared_with_platform"]
                                            and values["platform_dealer_id"])
            if row.kind == OrgKind.DEALER:
                parent = await session.get(OrgUnitRow, row.parent_id)
                row.region_code = parent.region_code
            elif row.kind == OrgKind.REGION:
                row.region_code = values["region_code"]
            row.updated_at = datetime.now(UTC)
            region_names = await self._region_names(session)
            region_names[row.region_code] = row.name if row.kind == OrgKind.REGION else \
                region_names.get(row.region_code, "")
            self._retag(row, region_names)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")]
                                    ) from exc
            after = unit_snapshot(row)
            changed = [key for key in after if after[key] != before[key]]
            unit = org_unit_to_proto(row)
            if changed:
                await self._audit(session, "org_unit.update", "org_unit", row.id, before, after,
                                  request.reason)
                await self.outbox.record(session, "org_unit", "updated", events_pb2.OrgUnitUpdated(
                    org_unit=unit, previous=previous, changed_fields=changed), row.id)
                if row.kind == OrgKind.DEALER and before["derived_tags"] != after["derived_tags"]:
                    await self._tags_changed(session, row, before["derived_tags"],
                                             before["custom_tags"])
            if row.kind == OrgKind.REGION and ("name" in changed or "region_code" in changed):
                await self._retag_region(session, old_region_code, row.region_code, region_names)
        return unit

    async def _retag_region(self, session, old_code: str, new_code: str,
                            region_names: dict[str, str]) -> None:
        dealers = (await session.scalars(select(OrgUnitRow).where(
            OrgUnitRow.kind == OrgKind.DEALER, OrgUnitRow.region_code == old_code))).all()
        for dealer in dealers:
            before = list(dealer.derived_tags or [])
            dealer.region_code = new_code
            self._retag(dealer, region_names)
            if before != dealer.derived_tags:
                await self._tags_changed(session, dealer, before, dealer.custom_tags)

    async def _tags_changed(self, session, row: OrgUnitRow, old_derived: list[str],
                            old_custom: list[str]) -> None:
        old = set(old_derived) | set(old_custom)
        new = set(row.derived_tags or []) | set(row.custom_tags or [])
        await self.outbox.record(session, "dealer_tags", "changed", events_pb2.TagsChanged(
            dealer_id=row.id, added=sorted(new - old), removed=sorted(old - new),
            derived_tags=list(row.derived_tags or []), custom_tags=list(row.custom_tags or [])),
            row.id)

    # ---- bulk import -----------------------------------------------------------------

    async def import_dealers(self, request: identity_pb2.ImportDealersRequest):
        principal = current_principal()
        self._require_admin(principal, "import dealers")
        file_format = {files_pb2.FILE_FORMAT_CSV: "csv",
                       files_pb2.FILE_FORMAT_XLSX: "xlsx"}.get(request.format, "")
        encoding = {files_pb2.TEXT_ENCODING_UTF8: "utf-8-sig",
                    files_pb2.TEXT_ENCODING_GBK: "gbk",
                    files_pb2.TEXT_ENCODING_GB18030: "gb18030"}.get(request.encoding, "")
        rows = await asyncio.to_thread(dealer_file.read_rows, request.content, request.filename,
                                       file_format, encoding)
        if not rows:
            raise InvalidArgument.field("content", "the file has no header row")
        index, problems = dealer_import.map_header(rows[0])
        parsed: list[dealer_import.ImportRow] = []
        if not problems:
            for number, cells in enumerate(rows[1:], start=2):
                row, row_problems = dealer_import.parse_row(number, cells, index)
                problems += row_problems
                if row is not None:
                    parsed.append(row)
            if len(rows) < 2:
                raise InvalidArgument.field("content", "the file has no dealer rows")
        seen: dict[str, int] = {}
        for row in parsed:
            code = row.fields.credit_code
            if code in seen:
                problems.append(dealer_import.RowProblem(
                    row.row_number, "credit_code", "DUPLICATE_IN_FILE", code,
                    f"also on row {seen[code]}"))
            seen.setdefault(code, row.row_number)
        created = updated = unchanged = 0
        async with self.db.unit_of_work() as session:
            regions = {r.region_code: r for r in (await session.scalars(
                select(OrgUnitRow).where(OrgUnitRow.kind == OrgKind.REGION))).all()}
            codes = [row.fields.credit_code for row in parsed] + [
                row.platform_credit_code for row in parsed if row.platform_credit_code]
            existing = {r.credit_code: r for r in (await session.scalars(select(OrgUnitRow).where(
                OrgUnitRow.credit_code.in_(codes)))).all()}
            in_file = {row.fields.credit_code: row for row in parsed}
            for row in parsed:
                if row.region_code not in regions:
                    problems.append(dealer_import.RowProblem(
                        row.row_number, "region_code", "UNKNOWN_REGION", row.region_code))
                platform_code = row.platform_credit_code
                if platform_code:
                    target_tier = (in_file[platform_code].fields.tier if platform_code in in_file
                                   else existing[platform_code].tier
                                   if platform_code in existing else None)
                    target_is_sub = (bool(in_file[platform_code].platform_credit_code)
                                     if platform_code in in_file
                                     else bool(existing[platform_code].platform_dealer_id)
                                     if platform_code in existing else False)
                    if (target_tier != Tier.PLATFORM or target_is_sub
                            or platform_code == row.fields.credit_code
                            or row.fields.tier == Tier.PLATFORM):
                        problems.append(dealer_import.RowProblem(
                            row.row_number, "platform_credit_code", "INVALID_PLATFORM",
                            platform_code))
            if problems:
                problems.sort(key=lambda p: (p.row_number, p.column))
                return identity_pb2.ImportDealersResponse(accepted=False, errors=[
                    files_pb2.RowError(row_number=p.row_number, column=p.column, code=p.code,
                                       message_zh=p.message_zh, message_en=p.message_en,
                                       value=p.value) for p in problems])
            if request.dry_run:
                created = sum(1 for r in parsed if r.fields.credit_code not in existing)
                await session.rollback()
                return identity_pb2.ImportDealersResponse(
                    accepted=True, created=created, updated=len(parsed) - created)
            region_names = {code: region.name for code, region in regions.items()}
            now = datetime.now(UTC)
            by_code = dict(existing)
            # Platform dealers first, so sub-dealers can point at them.
            ordered = sorted(parsed, key=lambda r: bool(r.platform_credit_code))
            pending_events = []
            for row in ordered:
                f = row.fields
                region = regions[row.region_code]
                platform = by_code.get(row.platform_credit_code) if row.platform_credit_code \
                    else None
                target = existing.get(f.credit_code)
                values = {"name": f.name, "parent_id": region.id, "tier": f.tier,
                          "platform_dealer_id": platform.id if platform else None,
                          "region_code": region.region_code,
                          "division_codes": list(f.division_codes),
                          "product_lines": list(f.product_lines), "status": f.status,
                          "city_code": f.city_code,
                          "shared_with_platform": bool(platform and row.shared_with_platform)}
                if target is None:
                    target = OrgUnitRow(id=str(uuid.uuid4()), kind=OrgKind.DEALER,
                                        credit_code=f.credit_code, created_at=now,
                                        custom_tags=list(f.custom_tags), derived_tags=[],
                                        **values)
                    self._retag(target, region_names)
                    session.add(target)
                    by_code[f.credit_code] = target
                    created += 1
                    pending_events.append(("created", target, None, None))
                    continue
                if target.kind != OrgKind.DEALER:
                    raise InvalidArgument.field("credit_code", f"row {row.row_number}: used by a"
                                                               " non-dealer org unit")
                before = unit_snapshot(target)
                previous = org_unit_to_proto(target)
                for key, value in values.items():
                    setattr(target, key, value)
                target.custom_tags = list(dict.fromkeys([*(target.custom_tags or []),
                                                         *f.custom_tags]))
                self._retag(target, region_names)
                if unit_snapshot(target) == before:
                    unchanged += 1
                    continue
                target.updated_at = now
                updated += 1
                pending_events.append(("updated", target, before, previous))
            await session.flush()
            for verb, target, before, previous in pending_events:
                after = unit_snapshot(target)
                unit = org_unit_to_proto(target)
                await self._audit(session, f"org_unit.import.{verb[:-1]}", "org_unit", target.id,
                                  before, after, f"import {request.filename}"[:500])
                if verb == "created":
                    payload = events_pb2.OrgUnitCreated(org_unit=unit)
                else:
                    payload = events_pb2.OrgUnitUpdated(
                        org_unit=unit, previous=previous,
                        changed_fields=[k for k in after if after[k] != before[k]])
                await self.outbox.record(session, "org_unit", verb, payload, target.id)
        return identity_pb2.ImportDealersResponse(accepted=True, created=created, updated=updated,
                                                  unchanged=unchanged)

    # ---- tags and audiences ----------------------------------------------------------

    async def _scoped_dealer_facts(self, session, principal: Principal,
                                   include_inactive: bool = True) -> list:
        """Only the columns tags and audiences need (id, status, region, tier, product
        lines, territory, tags) of the dealers in the principal's scope, ordered by name.
        The rows of all dealers are kept per generation (like scope answers): decoding
        thousands of JSON columns for every audience query would dominate its time."""
        visibility = await self._visibility(session, principal)
        generation = self._scope_generation
        if self._facts_cache is None or self._facts_cache[0] != generation:
            rows = (await session.execute(
                select(OrgUnitRow.id, OrgUnitRow.status, OrgUnitRow.region_code,
                       OrgUnitRow.tier, OrgUnitRow.product_lines, OrgUnitRow.division_codes,
                       OrgUnitRow.derived_tags, OrgUnitRow.custom_tags)
                .where(OrgUnitRow.kind == OrgKind.DEALER)
                .order_by(OrgUnitRow.name, OrgUnitRow.id))).all()
            self._facts_cache = (generation, [tuple(row) for row in rows])
        facts = self._facts_cache[1]
        return [row for row in facts
                if (include_inactive or row[1] == "active")
                and (visibility.everything or row[0] in visibility.dealer_ids)]

    async def list_tags(self, prefix: str, kind_value: int, size: int, token: str):
        async with self.db.sessions() as session:
            dealers = await self._scoped_dealer_facts(session, current_principal())
        counts: dict[tuple[str, int], int] = {}
        for *_, derived, custom in dealers:
            for kind, tags in ((identity_pb2.TAG_KIND_DERIVED, derived),
                               (identity_pb2.TAG_KIND_CUSTOM, custom)):
                for tag in set(tags or []):
                    counts[(tag, kind)] = counts.get((tag, kind), 0) + 1
        tags = [identity_pb2.Tag(name=name, kind=kind, dealer_count=count)
                for (name, kind), count in sorted(counts.items())
                if name.startswith(prefix) and (not kind_value or kind == kind_value)]
        return _page(tags, token, size)

    async def change_dealer_tags(self, dealer_ids: list[str], tags: list[str], add: bool) -> int:
        principal = current_principal()
        problems = tag_violations(tags)
        if not tags:
            problems.append(FieldViolation("tags", "at least one tag"))
        if not dealer_ids:
            problems.append(FieldViolation("dealer_ids", "at least one dealer"))
        collect(problems)
        changed = 0
        async with self.db.unit_of_work() as session:
            visibility = await self._visibility(session, principal)
            rows = []
            for index, dealer_id in enumerate(dict.fromkeys(dealer_ids)):
                row = await session.get(OrgUnitRow, dealer_id)
                if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                    raise NotFound(f"dealer {dealer_id} not found",
                                   violations=[FieldViolation(f"dealer_ids[{index}]",
                                                              "not found")])
                rows.append(row)
            if not principal.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
                raise PermissionDenied("only HQ admins and region managers tag dealers")
            for row in rows:
                before_custom = list(row.custom_tags or [])
                if add:
                    new = list(dict.fromkeys([*before_custom, *tags]))
                else:
                    derived = [t for t in tags if t in (row.derived_tags or [])]
                    if derived:
                        raise InvalidArgument.field(
                            "tags", f"derived tag {derived[0]} cannot be removed; change the "
                                    "dealer's region, city, tier or product lines instead")
                    new = [t for t in before_custom if t not in tags]
                if new == before_custom:
                    continue
                before = unit_snapshot(row)
                row.custom_tags = new
                row.updated_at = datetime.now(UTC)
                changed += 1
                await self._audit(session, "tag.add" if add else "tag.remove", "org_unit",
                                  row.id, before, unit_snapshot(row))
                await self._tags_changed(session, row, row.derived_tags, before_custom)
        return changed

    async def query_audience(self, expression: identity_pb2.AudienceExpression,
                             include_inactive: bool, size: int, token: str):
        predicate = audience_rules.compile_expression(expression_from_proto(expression))
        async with self.db.sessions() as session:
            dealers = await self._scoped_dealer_facts(session, current_principal(),
                                                      include_inactive)
            matches = [
                dealer_id for dealer_id, _, region, tier, lines, codes, derived, custom in dealers
                if predicate(audience_rules.DealerFacts(
                    id=dealer_id, region_code=region, tier=tier,
                    product_lines=frozenset(lines or []), division_codes=tuple(codes or []),
                    tags=frozenset([*(derived or []), *(custom or [])])))]
            chunk, next_token, total = _page(matches, token, size)
            rows = {r.id: r for r in (await session.scalars(
                select(OrgUnitRow).where(OrgUnitRow.id.in_(chunk)))).all()}
        return [org_unit_to_proto(rows[i]) for i in chunk], next_token, total

    # ---- users -----------------------------------------------------------------------

    async def _user_visible(self, session, principal: Principal, user: UserRow | None) -> bool:
        if user is None:
            return False
        if user.id == principal.user_id:
            return True
        principal = await self._current(session, principal)
        if principal.has_role(Role.HQ_ADMIN):
            return True
        unit = await session.get(OrgUnitRow, user.org_unit_id)
        if unit is None or unit.kind != OrgKind.DEALER:
            return False
        # Staff of the dealers in the principal's scope (for a platform dealer's staff
        # also its shared sub-dealers'), no one else; an ERP account sees no one.
        return (await self._visibility(session, principal, "user.read")).sees(unit)

    async def create_user(self, request: identity_pb2.CreateUserRequest) -> identity_pb2.User:
        principal = current_principal()
        username = request.username.strip().lower()
        violations = username_violations(username) + password_violations(request.password,
                                                                          username)
        roles, role_problems = _roles(request.roles)
        violations += role_problems
        if not request.org_unit_id:
            violations.append(FieldViolation("org_unit_id", "is required"))
        collect(violations)
        async with self.db.unit_of_work() as session:
            # Someone else's org unit is NOT_FOUND; one's own but without the right, 403.
            unit = await self._visible_unit(session, request.org_unit_id, principal)
            if principal.has_role(Role.HQ_ADMIN):
                pass
            elif principal.has_role(Role.DEALER_ADMIN) and unit.id == principal.dealer_id:
                # A dealer admin manages its own dealer's staff, nothing else.
                if not set(roles) <= DEALER_ROLES:
                    raise PermissionDenied("a dealer admin may only grant dealer roles")
            else:
                raise PermissionDenied("only HQ admins and a dealer's own admin create users")
            if not _roles_fit_unit(roles, unit.kind):
                raise InvalidArgument.field(
                    "roles", "dealer units take dealer roles only, HQ units HQ or service roles")
            if await session.scalar(select(UserRow.id).where(UserRow.username == username)):
                raise AlreadyExists(f"username {username} is taken",
                                    violations=[FieldViolation("username", "is taken")])
            now = datetime.now(UTC)
            row = UserRow(id=str(uuid.uuid4()), username=username,
                          display_name=request.display_name.strip(),
                          password_hash=await asyncio.to_thread(self.hasher.hash, request.password),
                          roles=[role.value for role in roles], org_unit_id=unit.id, active=True,
                          failed_logins=0, created_at=now)
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists(f"username {username} is taken",
                                    violations=[FieldViolation("username", "is taken")]) from exc
            user = user_to_proto(row, unit.id if unit.kind == OrgKind.DEALER else "")
            await self._audit(session, "user.create", "user", row.id, None, user_snapshot(row))
            await self.outbox.record(session, "user", "created",
                                     events_pb2.UserCreated(user=user), row.id)
        return user

    async def get_user(self, user_id: str) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.sessions() as session:
            row = await session.get(UserRow, user_id) if user_id else None
            if not await self._user_visible(session, principal, row):
                raise NotFound(f"user {user_id} not found")
            return user_to_proto(row, await self._dealer_of(session, row.org_unit_id))

    async def list_users(self, request: identity_pb2.ListUsersRequest, size: int):
        principal = current_principal()
        offset = decode_page_token(request.page.page_token)
        async with self.db.sessions() as session:
            current = await self._current(session, principal)
            query = select(UserRow).order_by(UserRow.created_at, UserRow.id)
            if not current.has_role(Role.HQ_ADMIN):
                visibility = await self._visibility(session, current, "user.read")
                units = set(visibility.dealer_ids)
                if visibility.everything:
                    units = set((await session.scalars(select(OrgUnitRow.id).where(
                        OrgUnitRow.kind == OrgKind.DEALER))).all())
                query = query.where(or_(UserRow.org_unit_id.in_(units),
                                        UserRow.id == current.user_id))
            unit_filter = request.dealer_id or request.org_unit_id
            if unit_filter:
                query = query.where(UserRow.org_unit_id == unit_filter)
            if not request.include_inactive:
                query = query.where(UserRow.active.is_(True))
            if request.query:
                query = query.where(or_(UserRow.username.contains(request.query, autoescape=True),
                                        UserRow.display_name.contains(request.query,
                                                                      autoescape=True)))
            rows = list((await session.scalars(query)).all())
            if request.role:
                role = PROTO_TO_ROLE.get(request.role)
                if role is None:
                    raise InvalidArgument.field("role", "unknown role")
                rows = [r for r in rows if role in r.roles]
            dealer_units = set((await session.scalars(select(OrgUnitRow.id).where(
                OrgUnitRow.id.in_({r.org_unit_id for r in rows}),
                OrgUnitRow.kind == OrgKind.DEALER))).all())
        chunk = rows[offset:offset + size]
        more = offset + size < len(rows)
        return ([user_to_proto(r, r.org_unit_id if r.org_unit_id in dealer_units else "")
                 for r in chunk], encode_page_token(offset + size) if more else "", len(rows))

    async def _managed_user(self, session, principal: Principal, user_id: str,
                            what: str) -> tuple[UserRow, OrgUnitRow]:
        """A user the principal may administer: HQ admin anyone, a dealer admin its own
        dealer's staff. Someone invisible is NOT_FOUND, someone visible but not
        administrable PERMISSION_DENIED."""
        row = await session.get(UserRow, user_id) if user_id else None
        if not await self._user_visible(session, principal, row):
            raise NotFound(f"user {user_id} not found")
        unit = await session.get(OrgUnitRow, row.org_unit_id)
        if principal.has_role(Role.HQ_ADMIN):
            return row, unit
        if principal.has_role(Role.DEALER_ADMIN) and unit.id == principal.dealer_id:
            return row, unit
        raise PermissionDenied(f"only HQ admins and the user's dealer admin {what}")

    async def update_user_roles(self, user_id: str, role_values: list[int], reason: str):
        principal = current_principal()
        roles, problems = _roles(role_values)
        collect(problems)
        async with self.db.unit_of_work() as session:
            row, unit = await self._managed_user(session, principal, user_id, "change roles")
            if not principal.has_role(Role.HQ_ADMIN) and not set(roles) <= DEALER_ROLES:
                raise PermissionDenied("a dealer admin may only grant dealer roles")
            if not _roles_fit_unit(roles, unit.kind):
                raise InvalidArgument.field(
                    "roles", "dealer units take dealer roles only, HQ units HQ or service roles")
            if Role.CHANNEL_MANAGER not in roles and Role.CHANNEL_MANAGER in row.roles:
                held = await session.scalar(select(func.count()).select_from(AssignmentRow).where(
                    AssignmentRow.manager_user_id == row.id))
                if held:
                    raise FailedPrecondition(
                        f"the user still manages {held} dealer assignment(s); transfer them "
                        "first", violations=[FieldViolation("roles", "still has assignments")])
            before = user_snapshot(row)
            previous = list(row.roles)
            row.roles = [role.value for role in roles]
            user = user_to_proto(row, unit.id if unit.kind == OrgKind.DEALER else "")
            if previous != row.roles:
                await self._audit(session, "user.roles.update", "user", row.id, before,
                                  user_snapshot(row), reason)
                await self.outbox.record(session, "user_roles", "changed",
                                         events_pb2.UserRolesChanged(
                                             user_id=row.id,
                                             previous_roles=[ROLE_TO_PROTO[Role(r)]
                                                             for r in previous],
                                             roles=list(user.roles), org_unit_id=row.org_unit_id,
                                             dealer_id=user.dealer_id), row.id)
        return user

    async def change_password(self, user_id: str, current_password: str, new_password: str):
        principal = current_principal()
        own = not user_id or user_id == principal.user_id
        async with self.db.unit_of_work() as session:
            if own:
                row = await session.get(UserRow, principal.user_id)
                if row is None:
                    raise NotFound("user not found")
                if not current_password:
                    raise InvalidArgument.field("current_password", "is required")
                if not await asyncio.to_thread(self._verify, row.password_hash, current_password):
                    raise InvalidArgument.field("current_password", "is wrong")
            else:
                row, _ = await self._managed_user(session, principal, user_id,
                                                  "reset passwords")
            collect([FieldViolation("new_password", v.description)
                     for v in password_violations(new_password, row.username)])
            row.password_hash = await asyncio.to_thread(self.hasher.hash, new_password)
            row.failed_logins = 0
            row.locked_until = None
            await session.execute(update(RefreshTokenRow).where(
                RefreshTokenRow.user_id == row.id, RefreshTokenRow.revoked_at.is_(None)
            ).values(revoked_at=datetime.now(UTC)))
            await self._audit(session, "user.password.change", "user", row.id, None, None)
            await self.outbox.record(session, "user_password", "changed",
                                     events_pb2.UserPasswordChanged(user_id=row.id), row.id)

    async def deactivate_user(self, user_id: str, successor_id: str, reason: str):
        principal = current_principal()
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            row, unit = await self._managed_user(session, principal, user_id, "deactivate users")
            if row.id == principal.user_id:
                raise InvalidArgument.field("id", "you cannot deactivate yourself")
            if not row.active:
                raise FailedPrecondition(f"user {user_id} is already deactivated")
            before = user_snapshot(row)
            held = (await session.scalars(select(AssignmentRow).where(
                AssignmentRow.manager_user_id == row.id))).all()
            if successor_id:
                await self._transfer(session, row.id, successor_id, [], [], reason,
                                     field="successor_user_id")
            elif held:
                raise InvalidArgument.field(
                    "successor_user_id", f"required: the user manages {len(held)} dealer "
                                         "assignment(s) that must pass to a successor")
            row.active = False
            row.deactivated_at = now
            await session.execute(update(RefreshTokenRow)
                                  .where(RefreshTokenRow.user_id == row.id,
                                         RefreshTokenRow.revoked_at.is_(None))
                                  .values(revoked_at=now))
            user = user_to_proto(row, unit.id if unit.kind == OrgKind.DEALER else "")
            await self._audit(session, "user.deactivate", "user", row.id, before,
                              user_snapshot(row), reason)
            await self.outbox.record(
                session, "user", "deactivated",
                events_pb2.UserDeactivated(user=user, successor_user_id=successor_id,
                                           reason=reason), row.id)
        self.revoked_users.add(user_id)
        return user

    # ---- assignments -----------------------------------------------------------------

    async def _channel_manager(self, session, user_id: str, field: str) -> UserRow:
        manager = await session.get(UserRow, user_id) if user_id else None
        if manager is None or not manager.active or Role.CHANNEL_MANAGER not in manager.roles:
            raise InvalidArgument.field(field, "must name an active channel manager")
        return manager

    async def _assigning_dealers(self, session, principal: Principal,
                                 dealer_ids: list[str]) -> list[OrgUnitRow]:
        if not dealer_ids:
            raise InvalidArgument.field("dealer_ids", "at least one dealer")
        visibility = await self._visibility(session, principal)
        rows = []
        for index, dealer_id in enumerate(dict.fromkeys(dealer_ids)):
            row = await session.get(OrgUnitRow, dealer_id)
            if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                raise NotFound(f"dealer {dealer_id} not found", violations=[
                    FieldViolation(f"dealer_ids[{index}]", "not found")])
            rows.append(row)
        if not principal.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
            raise PermissionDenied("only HQ admins and region managers assign dealers")
        return rows

    async def assign_dealers(self, request: identity_pb2.AssignDealersRequest):
        principal = current_principal()
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            dealers = await self._assigning_dealers(session, principal, list(request.dealer_ids))
            manager = await self._channel_manager(session, request.manager_user_id,
                                                  "manager_user_id")
            result, added = [], []
            for dealer in dealers:
                lines = list(request.product_lines) or list(dealer.product_lines)
                for index, line in enumerate(lines):
                    if line not in dealer.product_lines:
                        raise InvalidArgument.field(
                            f"product_lines[{index}]",
                            f"dealer {dealer.name} does not carry product line {line}")
                    row = await session.get(AssignmentRow, (manager.id, dealer.id, line))
                    if row is None:
                        row = AssignmentRow(manager_user_id=manager.id, dealer_id=dealer.id,
                                            product_line=line, created_at=now,
                                            assigned_by=principal.subject)
                        session.add(row)
                        added.append(assignment_to_proto(row))
                    result.append(assignment_to_proto(row))
            if added:
                await session.flush()
                await self._audit(session, "assignment.assign", "assignment", manager.id, None,
                                  {"added": [_assignment_dict(a) for a in added]}, request.reason)
                await self.outbox.record(session, "assignment", "changed",
                                         events_pb2.AssignmentChanged(
                                             kind=events_pb2.ASSIGNMENT_CHANGE_KIND_ASSIGNED,
                                             added=added, to_manager_user_id=manager.id,
                                             reason=request.reason), manager.id)
        return result

    async def unassign_dealers(self, request: identity_pb2.UnassignDealersRequest):
        principal = current_principal()
        async with self.db.unit_of_work() as session:
            dealers = await self._assigning_dealers(session, principal, list(request.dealer_ids))
            query = select(AssignmentRow).where(
                AssignmentRow.manager_user_id == request.manager_user_id,
                AssignmentRow.dealer_id.in_([d.id for d in dealers]))
            if request.product_lines:
                query = query.where(AssignmentRow.product_line.in_(list(request.product_lines)))
            rows = (await session.scalars(query)).all()
            removed = [assignment_to_proto(r) for r in rows]
            for row in rows:
                await session.delete(row)
            if removed:
                await self._audit(session, "assignment.unassign", "assignment",
                                  request.manager_user_id,
                                  {"removed": [_assignment_dict(a) for a in removed]}, None,
                                  request.reason)
                await self.outbox.record(session, "assignment", "changed",
                                         events_pb2.AssignmentChanged(
                                             kind=events_pb2.ASSIGNMENT_CHANGE_KIND_UNASSIGNED,
                                             removed=removed,
                                             from_manager_user_id=request.manager_user_id,
                                             reason=request.reason), request.manager_user_id)
        return removed

    async def list_assignments(self, request: identity_pb2.ListAssignmentsRequest, size: int):
        principal = current_principal()
        async with self.db.sessions() as session:
            current = await self._current(session, principal)
            visibility = await self._visibility(session, current)
            query = select(AssignmentRow).order_by(AssignmentRow.created_at,
                                                   AssignmentRow.dealer_id,
                                                   AssignmentRow.product_line)
            if not visibility.everything:
                query = query.where(or_(AssignmentRow.dealer_id.in_(visibility.dealer_ids),
                                        AssignmentRow.manager_user_id == current.user_id))
            if request.manager_user_id:
                query = query.where(AssignmentRow.manager_user_id == request.manager_user_id)
            if request.dealer_id:
                query = query.where(AssignmentRow.dealer_id == request.dealer_id)
            if request.product_line:
                query = query.where(AssignmentRow.product_line == request.product_line)
            rows = [assignment_to_proto(r) for r in (await session.scalars(query)).all()]
        return _page(rows, request.page.page_token, size)

    async def transfer_assignments(self, request: identity_pb2.TransferAssignmentsRequest):
        principal = current_principal()
        async with self.db.unit_of_work() as session:
            if request.dealer_ids:
                visibility = await self._visibility(session, principal)
                for index, dealer_id in enumerate(request.dealer_ids):
                    row = await session.get(OrgUnitRow, dealer_id)
                    if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                        raise NotFound(f"dealer {dealer_id} not found", violations=[
                            FieldViolation(f"dealer_ids[{index}]", "not found")])
            self._require_admin(principal, "transfer assignments")
            source = await session.get(UserRow, request.from_manager_user_id) \
                if request.from_manager_user_id else None
            if source is None:
                raise InvalidArgument.field("from_manager_user_id", "must name a user")
            held = await self._transfer(session, source.id, request.to_manager_user_id,
                                        list(request.dealer_ids), list(request.product_lines),
                                        request.reason, field="to_manager_user_id")
        return held

    async def _transfer(self, session, from_id: str, to_id: str, dealer_ids: list[str],
                        product_lines: list[str], reason: str, field: str):
        if to_id == from_id:
            raise InvalidArgument.field(field, "must name another user")
        successor = await self._channel_manager(session, to_id, field)
        query = select(AssignmentRow).where(AssignmentRow.manager_user_id == from_id)
        if dealer_ids:
            query = query.where(AssignmentRow.dealer_id.in_(dealer_ids))
        if product_lines:
            query = query.where(AssignmentRow.product_line.in_(product_lines))
        rows = (await session.scalars(query)).all()
        removed = [assignment_to_proto(r) for r in rows]
        now = datetime.now(UTC)
        actor = current_principal().subject
        added = []
        for row in rows:
            key = (successor.id, row.dealer_id, row.product_line)
            await session.delete(row)
            await session.flush()
            if await session.get(AssignmentRow, key) is None:
                session.add(AssignmentRow(manager_user_id=successor.id, dealer_id=row.dealer_id,
                                          product_line=row.product_line, created_at=now,
                                          assigned_by=actor))
            added.append(identity_pb2.Assignment(manager_user_id=successor.id,
                                                 dealer_id=row.dealer_id,
                                                 product_line=row.product_line,
                                                 assigned_by=actor))
        for assignment in added:
            _stamp(assignment.assigned_at, now)
        await session.flush()
        if rows:
            await self._audit(session, "assignment.transfer", "assignment", from_id,
                              {"manager_user_id": from_id,
                               "assignments": [_assignment_dict(a) for a in removed]},
                              {"manager_user_id": successor.id,
                               "assignments": [_assignment_dict(a) for a in added]}, reason)
            await self.outbox.record(session, "assignment", "changed",
                                     events_pb2.AssignmentChanged(
                                         kind=events_pb2.ASSIGNMENT_CHANGE_KIND_TRANSFERRED,
                                         added=added, removed=removed,
                                         from_manager_user_id=from_id,
                                         to_manager_user_id=successor.id, reason=reason), from_id)
        return added

    # ---- scope -----------------------------------------------------------------------

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

    async def resolve_scope(self, user_id: str, action: str, product_line: str = ""
                            ) -> identity_pb2.ResolveScopeResponse:
        principal = current_principal()
        if user_id and user_id != principal.user_id and not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied("only HQ admins resolve another user's scope")
        key = (user_id or principal.user_id or principal.subject, action, product_line)
        generation = self._scope_generation
        cached = self._scope_cache.get(key)
        if cached is not None and cached[0] == generation and cached[1] > time.monotonic():
            return cached[2]
        async with self.db.sessions() as session:
            if user_id and user_id != principal.user_id:
                user = await session.get(UserRow, user_id)
                if user is None:
                    raise NotFound(f"user {user_id} not found")
                principal = self._principal(user, await self._dealer_of(session, user.org_unit_id))
            principal = await self._current(session, principal)
            scope = await self._scope(session, principal, action, product_line)
        response = identity_pb2.ResolveScopeResponse(all_dealers=scope.all_dealers,
                                                     dealer_ids=sorted(scope.dealer_ids))
        if len(self._scope_cache) > SCOPE_CACHE_ENTRIES:
            self._scope_cache.clear()
        # Stored under the generation read before the queries: a change committed while
        # they ran makes this entry stale at once.
        self._scope_cache[key] = (generation, time.monotonic() + SCOPE_CACHE_SECONDS, response)
        return response

    # ---- audit -----------------------------------------------------------------------

    async def list_audit_events(self, request: identity_pb2.ListAuditEventsRequest, size: int):
        principal = current_principal()
        self._require_admin(principal, "read the audit trail")
        offset = decode_page_token(request.page.page_token)
        query = select(AuditRow).order_by(AuditRow.occurred_at.desc(), AuditRow.id)
        for column, value in ((AuditRow.actor, request.actor),
                              (AuditRow.target_type, request.target_type),
                              (AuditRow.target_id, request.target_id),
                              (AuditRow.action, request.action)):
            if value:
                query = query.where(column == value)
        if request.HasField("occurred_after"):
            query = query.where(AuditRow.occurred_at >= request.occurred_after.ToDatetime(UTC))
        if request.HasField("occurred_before"):
            query = query.where(AuditRow.occurred_at < request.occurred_before.ToDatetime(UTC))
        async with self.db.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(
                query.order_by(None).subquery()))
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        events = []
        for row in rows[:size]:
            event = identity_pb2.AuditEvent(
                id=row.id, actor=row.actor, action=row.action, target_type=row.target_type,
                target_id=row.target_id, before_json=row.before_json, after_json=row.after_json,
                reason=row.reason, request_id=row.request_id)
            _stamp(event.occurred_at, row.occurred_at)
            events.append(event)
        return events, encode_page_token(offset + size) if len(rows) > size else "", total


def _assignment_dict(assignment: identity_pb2.Assignment) -> dict:
    return {"manager_user_id": assignment.manager_user_id, "dealer_id": assignment.dealer_id,
            "product_line": assignment.product_line}


def expression_from_proto(expression: identity_pb2.AudienceExpression) -> audience_rules.Node:
    which = expression.WhichOneof("expression")
    if which == "term":
        kind = expression.term.WhichOneof("term")
        if kind is None:
            raise InvalidArgument.field("expression.term", "is empty")
        value = getattr(expression.term, kind)
        if kind == "tier":
            tier = PROTO_TO_TIER.get(value)
            if tier is None:
                raise InvalidArgument.field("expression.term.tier", "unknown tier")
            value = tier.value
        return audience_rules.Node("term", kind=kind, value=value)
    if which in ("all_of", "any_of"):
        return audience_rules.Node("all" if which == "all_of" else "any", tuple(
            expression_from_proto(e) for e in getattr(expression, which).expressions))
    if which == "negate":
        return audience_rules.Node("not", (expression_from_proto(expression.negate),))
    raise InvalidArgument.field("expression", "an expression is required")

