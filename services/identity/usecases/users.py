"""Users, their roles and passwords: HQ admins manage everyone, a dealer admin its own
dealer's staff. Deactivating a channel manager hands the assignments to a successor and
revokes the user's sessions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.identity.adapters.orm import AssignmentRow, OrgUnitRow, RefreshTokenRow, UserRow
from services.identity.domain.rules import (
    DEALER_ROLES,
    OrgKind,
    Role,
    password_violations,
    username_violations,
)
from services.identity.usecases.assignments import AssignmentUseCases
from services.identity.usecases.common import (
    PROTO_TO_ROLE,
    ROLE_TO_PROTO,
    user_snapshot,
    user_to_proto,
)
from shared.context import Principal, current_principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.identity import (
    SESSION_REVOKED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_PASSWORD_CHANGED,
    USER_ROLES_CHANGED,
)
from shared.pagination import decode_page_token, encode_page_token


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


class UserUseCases(AssignmentUseCases):
    """Extends the assignment use cases: deactivating a user hands its assignments to
    the successor in the same unit of work."""

    # ---- bootstrap -------------------------------------------------------------------

    async def ensure_bootstrap(self, admin_username: str, admin_password: str) -> None:
        """On an empty database, create HQ and its first admin (from configuration)."""
        async with self.db.write() as session:
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
        async with self.db.write() as session:
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
            await self.outbox.record(session, USER_CREATED,
                                     events_pb2.UserCreated(user=user), row.id)
        return user

    async def get_user(self, user_id: str) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.read() as session:
            row = await session.get(UserRow, user_id) if user_id else None
            if not await self._user_visible(session, principal, row):
                raise NotFound(f"user {user_id} not found")
            return user_to_proto(row, await self._dealer_of(session, row.org_unit_id))

    async def list_users(self, request: identity_pb2.ListUsersRequest, size: int):
        principal = current_principal()
        offset = decode_page_token(request.page.page_token)
        async with self.db.read() as session:
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
        """Roles take effect at once: the user's access tokens issued before the change
        are revoked everywhere, and the next refresh carries the new roles."""
        principal = current_principal()
        roles, problems = _roles(role_values)
        collect(problems)
        async with self.db.write() as session:
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
                await self.outbox.record(session, USER_ROLES_CHANGED,
                                         events_pb2.UserRolesChanged(
                                             user_id=row.id,
                                             previous_roles=[ROLE_TO_PROTO[Role(r)]
                                                             for r in previous],
                                             roles=list(user.roles), org_unit_id=row.org_unit_id,
                                             dealer_id=user.dealer_id), row.id)
                changed_at = await self._revoke_tokens_issued_until_now(session, row.id,
                                                                        "roles_changed")
        if previous != row.roles:
            # This replica refuses the old tokens now; the others when the event arrives.
            self.revocations.revoke_issued_before(row.id, changed_at)
        return user

    async def change_password(self, user_id: str, current_password: str, new_password: str):
        """Every session of the user ends: refresh tokens are revoked here, access tokens
        everywhere (SessionRevoked); the user signs in again with the new password."""
        principal = current_principal()
        own = not user_id or user_id == principal.user_id
        async with self.db.write() as session:
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
            await self.outbox.record(session, USER_PASSWORD_CHANGED,
                                     events_pb2.UserPasswordChanged(user_id=row.id), row.id)
            changed_at = await self._revoke_tokens_issued_until_now(session, row.id,
                                                                    "password_changed")
        self.revocations.revoke_issued_before(row.id, changed_at)

    async def _revoke_tokens_issued_until_now(self, session, user_id: str,
                                              reason: str) -> float:
        """Record the revocation of every access token the user holds; returns the moment
        (epoch seconds) tokens must be issued after to stay valid."""
        moment = time.time()
        revoked = events_pb2.SessionRevoked(user_id=user_id, reason=reason)
        revoked.issued_before.FromNanoseconds(int(moment * 1e9))
        await self.outbox.record(session, SESSION_REVOKED, revoked, user_id)
        return moment

    async def deactivate_user(self, user_id: str, successor_id: str, reason: str):
        principal = current_principal()
        now = datetime.now(UTC)
        async with self.db.write() as session:
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
                session, USER_DEACTIVATED,
                events_pb2.UserDeactivated(user=user, successor_user_id=successor_id,
                                           reason=reason), row.id)
        self.revoked_users.add(user_id)
        return user
