"""Identity use cases: org units, users, login and sessions, scope resolution."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from services.identity.adapters.orm import AssignmentRow, OrgUnitRow, RefreshTokenRow, UserRow
from services.identity.domain.rules import (
    DEALER_ROLES,
    HQ_ROLES,
    LoginState,
    OrgKind,
    Role,
    Tier,
    credit_code_violations,
    password_violations,
    scope_for,
    username_violations,
)
from shared.auth import TokenIssuer
from shared.bus.outbox import Outbox
from shared.context import Principal, current_principal
from shared.db import Database
from shared.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    collect,
)
from shared.pagination import decode_page_token, encode_page_token

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
REFRESH_TTL = timedelta(days=14)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def org_unit_to_proto(row: OrgUnitRow) -> identity_pb2.OrgUnit:
    unit = identity_pb2.OrgUnit(
        id=row.id, kind=KIND_TO_PROTO[OrgKind(row.kind)], name=row.name,
        parent_id=row.parent_id or "", credit_code=row.credit_code or "",
        tier=TIER_TO_PROTO.get(row.tier, identity_pb2.DEALER_TIER_UNSPECIFIED),
        platform_dealer_id=row.platform_dealer_id or "",
        division_codes=list(row.division_codes or []), product_lines=list(row.product_lines or []),
        status=STATUS_TO_PROTO.get(row.status, identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED),
        region_code=row.region_code,
    )
    unit.created_at.FromDatetime(_aware(row.created_at))
    return unit


def user_to_proto(row: UserRow, dealer_id: str) -> identity_pb2.User:
    user = identity_pb2.User(
        id=row.id, username=row.username, display_name=row.display_name,
        roles=[ROLE_TO_PROTO[Role(role)] for role in row.roles], org_unit_id=row.org_unit_id,
        dealer_id=dealer_id, active=row.active,
    )
    user.created_at.FromDatetime(_aware(row.created_at))
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IdentityService:
    def __init__(self, db: Database, outbox: Outbox, issuer: TokenIssuer) -> None:
        self.db = db
        self.outbox = outbox
        self.issuer = issuer
        self.hasher = PasswordHasher()
        # Sessions revoked in this process; other services learn of it from events.
        self.revoked_users: set[str] = set()

    # ---- bootstrap -------------------------------------------------------------------

    async def ensure_bootstrap(self, admin_username: str, admin_password: str) -> None:
        """On an empty database, create HQ and its first admin (from configuration)."""
        async with self.db.unit_of_work() as session:
            if (await session.scalar(select(func.count()).select_from(OrgUnitRow))) > 0:
                return
            now = datetime.now(UTC)
            hq = OrgUnitRow(id=str(uuid.uuid4()), kind=OrgKind.HQ, name="总部", parent_id=None,
                            credit_code=None, tier="", platform_dealer_id=None, region_code="",
                            division_codes=[], product_lines=[], status="active", created_at=now)
            session.add(hq)
            await session.flush()
            password_hash = await asyncio.to_thread(self.hasher.hash, admin_password)
            session.add(UserRow(id=str(uuid.uuid4()), username=admin_username,
                                display_name="HQ administrator", password_hash=password_hash,
                                roles=[Role.HQ_ADMIN], org_unit_id=hq.id, active=True,
                                failed_logins=0, created_at=now))

    # ---- sessions --------------------------------------------------------------------

    async def _dealer_of(self, session, org_unit_id: str) -> str:
        unit = await session.get(OrgUnitRow, org_unit_id)
        return unit.id if unit is not None and unit.kind == OrgKind.DEALER else ""

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
                await asyncio.to_thread(self._verify, "$argon2id$v=19$m=65536,t=3,p=4$"
                                        "c29tZXNhbHRzb21lc2FsdA$" + "A" * 43, password)
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
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        async with self.db.unit_of_work() as session:
            row = await session.get(RefreshTokenRow, _hash_token(refresh_token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)

    async def who_am_i(self) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.sessions() as session:
            user = await session.get(UserRow, principal.user_id)
            if user is None:
                raise NotFound("user not found")
            return user_to_proto(user, await self._dealer_of(session, user.org_unit_id))

    def is_revoked(self, principal: Principal) -> bool:
        return principal.user_id in self.revoked_users

    # ---- org units -------------------------------------------------------------------

    async def create_org_unit(self, request: identity_pb2.CreateOrgUnitRequest):
        principal = current_principal()
        if not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied("only HQ admins change the org structure")
        kind = PROTO_TO_KIND.get(request.kind)
        violations: list[FieldViolation] = []
        if kind is None or kind == OrgKind.HQ:
            violations.append(FieldViolation("kind", "must be REGION or DEALER"))
        name = request.name.strip()
        if not name:
            violations.append(FieldViolation("name", "is required"))
        tier = PROTO_TO_TIER.get(request.tier)
        if kind == OrgKind.DEALER:
            violations += credit_code_violations(request.credit_code.strip())
            if tier is None:
                violations.append(FieldViolation("tier", "must be PLATFORM, ONE or TWO"))
            for index, code in enumerate(request.division_codes):
                if not (len(code) == 6 and code.isdigit()):
                    violations.append(FieldViolation(f"division_codes[{index}]",
                                                     f"{code!r} is not a 6-digit GB/T 2260 code"))
            if not request.product_lines:
                violations.append(FieldViolation("product_lines", "at least one is required"))
        collect(violations)
        async with self.db.unit_of_work() as session:
            parent_id = request.parent_id or None
            if parent_id is None:
                parent = await session.scalar(select(OrgUnitRow).where(
                    OrgUnitRow.kind == (OrgKind.HQ if kind == OrgKind.REGION else OrgKind.REGION),
                    OrgUnitRow.region_code == request.region_code)
                    if kind == OrgKind.DEALER else
                    select(OrgUnitRow).where(OrgUnitRow.kind == OrgKind.HQ))
            else:
                parent = await session.get(OrgUnitRow, parent_id)
            expected_parent = OrgKind.HQ if kind == OrgKind.REGION else OrgKind.REGION
            if parent is None or parent.kind != expected_parent:
                raise InvalidArgument.field(
                    "parent_id" if request.parent_id else "region_code",
                    f"a {kind} must belong to an existing {expected_parent}")
            platform_id = request.platform_dealer_id or None
            if platform_id:
                platform = await session.get(OrgUnitRow, platform_id)
                if platform is None or platform.tier != Tier.PLATFORM:
                    raise InvalidArgument.field("platform_dealer_id",
                                                "must name a platform dealer (平台商)")
            region_code = (request.region_code.strip() if kind == OrgKind.REGION
                           else parent.region_code)
            if kind == OrgKind.REGION and not region_code:
                raise InvalidArgument.field("region_code", "is required for a region")
            row = OrgUnitRow(
                id=str(uuid.uuid4()), kind=kind, name=name, parent_id=parent.id,
                credit_code=request.credit_code.strip() or None,
                tier=tier.value if tier else "", platform_dealer_id=platform_id,
                region_code=region_code, division_codes=list(request.division_codes),
                product_lines=list(request.product_lines), status="active",
                created_at=datetime.now(UTC),
            )
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")]
                                    ) from exc
            unit = org_unit_to_proto(row)
            await self.outbox.record(session, "org_unit", "created",
                                     events_pb2.OrgUnitCreated(org_unit=unit), row.id)
        return unit

    async def _visible_org_ids(self, session, principal: Principal) -> set[str] | None:
        """None means every org unit."""
        if principal.roles & HQ_ROLES or principal.has_role(Role.ERP):
            return None
        scope = await self._scope(session, principal)
        return set(scope.dealer_ids) | ({principal.org_unit_id} if principal.org_unit_id else set())

    async def get_org_unit(self, org_unit_id: str) -> identity_pb2.OrgUnit:
        async with self.db.sessions() as session:
            visible = await self._visible_org_ids(session, current_principal())
            row = await session.get(OrgUnitRow, org_unit_id)
            if row is None or (visible is not None and row.id not in visible):
                raise NotFound(f"org unit {org_unit_id} not found")
            return org_unit_to_proto(row)

    async def list_org_units(self, kind_value: int, parent_id: str, size: int, token: str):
        offset = decode_page_token(token)
        async with self.db.sessions() as session:
            visible = await self._visible_org_ids(session, current_principal())
            query = select(OrgUnitRow).order_by(OrgUnitRow.created_at, OrgUnitRow.id)
            if kind_value:
                kind = PROTO_TO_KIND.get(kind_value)
                if kind is None:
                    raise InvalidArgument.field("kind", "unknown org unit kind")
                query = query.where(OrgUnitRow.kind == kind)
            if parent_id:
                query = query.where(OrgUnitRow.parent_id == parent_id)
            if visible is not None:
                query = query.where(OrgUnitRow.id.in_(visible))
            total = await session.scalar(select(func.count()).select_from(
                query.order_by(None).subquery()))
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([org_unit_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    # ---- users -----------------------------------------------------------------------

    async def create_user(self, request: identity_pb2.CreateUserRequest) -> identity_pb2.User:
        principal = current_principal()
        username = request.username.strip().lower()
        roles = []
        violations = username_violations(username) + password_violations(request.password,
                                                                          username)
        for index, value in enumerate(request.roles):
            role = PROTO_TO_ROLE.get(value)
            if role is None:
                violations.append(FieldViolation(f"roles[{index}]", "unknown role"))
            else:
                roles.append(role)
        if not roles:
            violations.append(FieldViolation("roles", "at least one role is required"))
        if not request.org_unit_id:
            violations.append(FieldViolation("org_unit_id", "is required"))
        collect(violations)
        async with self.db.unit_of_work() as session:
            unit = await session.get(OrgUnitRow, request.org_unit_id)
            if principal.has_role(Role.HQ_ADMIN):
                allowed = unit is not None
            elif principal.has_role(Role.DEALER_ADMIN):
                # A dealer admin manages its own dealer's staff, nothing else.
                allowed = unit is not None and unit.id == principal.dealer_id
                if allowed and not set(roles) <= DEALER_ROLES:
                    raise PermissionDenied("a dealer admin may only grant dealer roles")
            else:
                raise PermissionDenied("only HQ admins and dealer admins create users")
            if not allowed:
                raise NotFound(f"org unit {request.org_unit_id} not found")
            is_dealer_unit = unit.kind == OrgKind.DEALER
            if is_dealer_unit != (set(roles) <= DEALER_ROLES):
                raise InvalidArgument.field(
                    "roles", "dealer units take dealer roles only, HQ units HQ or service roles")
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
            user = user_to_proto(row, unit.id if is_dealer_unit else "")
            await self.outbox.record(session, "user", "created",
                                     events_pb2.UserCreated(user=user), row.id)
        return user

    async def get_user(self, user_id: str) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.sessions() as session:
            row = await session.get(UserRow, user_id)
            visible = await self._visible_org_ids(session, principal)
            if row is None or (visible is not None and row.org_unit_id not in visible
                               and row.id != principal.user_id):
                raise NotFound(f"user {user_id} not found")
            return user_to_proto(row, await self._dealer_of(session, row.org_unit_id))

    async def deactivate_user(self, user_id: str, successor_id: str, reason: str):
        principal = current_principal()
        if not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied("only HQ admins deactivate users")
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as session:
            row = await session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"user {user_id} not found")
            if successor_id:
                successor = await session.get(UserRow, successor_id)
                if successor is None or not successor.active or successor.id == row.id:
                    raise InvalidArgument.field("successor_user_id",
                                                "must name another active user")
                await session.execute(update(AssignmentRow)
                                      .where(AssignmentRow.manager_user_id == row.id)
                                      .values(manager_user_id=successor.id))
            row.active = False
            row.deactivated_at = now
            await session.execute(update(RefreshTokenRow)
                                  .where(RefreshTokenRow.user_id == row.id,
                                         RefreshTokenRow.revoked_at.is_(None))
                                  .values(revoked_at=now))
            user = user_to_proto(row, await self._dealer_of(session, row.org_unit_id))
            await self.outbox.record(
                session, "user", "deactivated",
                events_pb2.UserDeactivated(user=user, successor_user_id=successor_id,
                                           reason=reason), row.id)
        self.revoked_users.add(user_id)
        return user

    # ---- scope -----------------------------------------------------------------------

    async def _scope(self, session, principal: Principal):
        roles = frozenset(principal.roles)
        assigned: frozenset[str] = frozenset()
        region_dealers: frozenset[str] = frozenset()
        sub_dealers: frozenset[str] = frozenset()
        if Role.CHANNEL_MANAGER in roles:
            assigned = frozenset((await session.scalars(
                select(AssignmentRow.dealer_id).where(
                    AssignmentRow.manager_user_id == principal.user_id))).all())
        if Role.REGION_MANAGER in roles and principal.org_unit_id:
            region_dealers = frozenset((await session.scalars(
                select(OrgUnitRow.id).where(OrgUnitRow.parent_id == principal.org_unit_id,
                                            OrgUnitRow.kind == OrgKind.DEALER))).all())
        if roles & DEALER_ROLES and principal.dealer_id:
            sub_dealers = frozenset((await session.scalars(
                select(OrgUnitRow.id).where(
                    OrgUnitRow.platform_dealer_id == principal.dealer_id))).all())
        return scope_for(roles, principal.dealer_id, assigned, region_dealers, sub_dealers)

    async def resolve_scope(self, user_id: str, action: str) -> identity_pb2.ResolveScopeResponse:
        principal = current_principal()
        async with self.db.sessions() as session:
            if user_id and user_id != principal.user_id:
                if not principal.has_role(Role.HQ_ADMIN, Role.ERP):
                    raise PermissionDenied("only HQ admins resolve another user's scope")
                user = await session.get(UserRow, user_id)
                if user is None:
                    raise NotFound(f"user {user_id} not found")
                principal = self._principal(user, await self._dealer_of(session, user.org_unit_id))
            scope = await self._scope(session, principal)
        return identity_pb2.ResolveScopeResponse(all_dealers=scope.all_dealers,
                                                 dealer_ids=sorted(scope.dealer_ids))
