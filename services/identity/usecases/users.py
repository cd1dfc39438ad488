"""Users, their roles and passwords: HQ admins manage everyone, a dealer admin its own
dealer's staff. Role and password changes revoke the user's older access tokens
everywhere; deactivating a user ends its sessions and hands its assignments to a
successor. Passwords are hashed outside the write transaction (argon2 takes tens of
milliseconds, and the SQLite writer is shared)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from services.identity import messages
from services.identity.domain.model import OrgUnit, User, UserFilter
from services.identity.domain.rules import (
    DEALER_ROLES,
    OrgKind,
    Role,
    password_violations,
    username_violations,
)
from services.identity.usecases.access import as_now, audit, visibility, visible_unit
from services.identity.usecases.assignments import hand_over
from services.identity.usecases.ports import IdentityUnitOfWork, Passwords, Revocations
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_version,
    collect,
)
from shared.events.identity import (
    SESSION_REVOKED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_PASSWORD_CHANGED,
    USER_ROLES_CHANGED,
)
from shared.ids import IdSource
from shared.pagination import Page, PageRequest

# Longer than any access token lives: a user deactivated since is refused at start.
REVOCATION_MEMORY = timedelta(days=1)


def role_list(values: Iterable[Role | None], field: str = "roles"
              ) -> tuple[tuple[Role, ...], list[FieldViolation]]:
    """The roles a request names (None: a value it did not know), each once."""
    roles: list[Role] = []
    problems: list[FieldViolation] = []
    for index, role in enumerate(values):
        if role is None:
            problems.append(FieldViolation(f"{field}[{index}]", "unknown role"))
        elif role not in roles:
            roles.append(role)
    if not roles and not problems:
        problems.append(FieldViolation(field, "at least one role is required"))
    return tuple(roles), problems


def _fit(roles: Iterable[str], dealer_staff: bool) -> None:
    roles = set(roles)
    if not (roles <= DEALER_ROLES if dealer_staff else not roles & DEALER_ROLES):
        raise InvalidArgument.field(
            "roles", "dealer units take dealer roles only, HQ units HQ or service roles")


async def ensure_bootstrap_admin(username: str, password: str, *, uow: IdentityUnitOfWork,
                                 passwords: Passwords, clock: Clock, ids: IdSource) -> None:
    """On an empty database, create HQ and its first admin (from configuration)."""
    async with uow.read():
        if await uow.org_units.any():
            return
    password_hash = await passwords.hash(password)
    async with uow:
        if await uow.org_units.any():
            return
        hq = OrgUnit(id=ids.new_id(), kind=OrgKind.HQ, name="总部", created_at=clock.now())
        await uow.org_units.add(hq)
        await uow.users.add(User(
            id=ids.new_id(), username=username, password_hash=password_hash,
            roles=(Role.HQ_ADMIN.value,), org_unit_id=hq.id, display_name="HQ administrator",
            created_at=clock.now()))
        await uow.commit()


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    # None for a role the request named but this service does not know.
    roles: tuple[Role | None, ...]
    org_unit_id: str
    display_name: str = ""


async def _may_create_in(uow: IdentityUnitOfWork, who: Principal, org_unit_id: str,
                         roles: tuple[Role, ...], username: str) -> OrgUnit:
    # Someone else's org unit is NOT_FOUND; one's own but without the right, 403.
    unit = await visible_unit(uow, who, org_unit_id)
    if who.has_role(Role.HQ_ADMIN):
        pass
    elif who.has_role(Role.DEALER_ADMIN) and unit.id == who.dealer_id:
        # A dealer admin manages its own dealer's staff, nothing else.
        if not set(roles) <= DEALER_ROLES:
            raise PermissionDenied("a dealer admin may only grant dealer roles")
    else:
        raise PermissionDenied("only HQ admins and a dealer's own admin create users")
    _fit(roles, unit.is_dealer)
    if await uow.users.by_username(username) is not None:
        raise AlreadyExists(f"username {username} is taken",
                            violations=[FieldViolation("username", "is taken")])
    return unit


async def create_user(new: NewUser, *, who: Principal, uow: IdentityUnitOfWork,
                      passwords: Passwords, clock: Clock, ids: IdSource) -> User:
    username = new.username.strip().lower()
    violations = username_violations(username) + password_violations(new.password, username)
    roles, role_problems = role_list(new.roles)
    violations += role_problems
    if not new.org_unit_id:
        violations.append(FieldViolation("org_unit_id", "is required"))
    collect(violations)
    async with uow.read():
        await _may_create_in(uow, who, new.org_unit_id, roles, username)
    password_hash = await passwords.hash(new.password)
    async with uow:
        # Checked again as things are now: the hash took a while.
        unit = await _may_create_in(uow, who, new.org_unit_id, roles, username)
        user = User(id=ids.new_id(), username=username, password_hash=password_hash,
                    roles=tuple(role.value for role in roles), org_unit_id=unit.id,
                    display_name=new.display_name.strip(),
                    dealer_id=unit.id if unit.is_dealer else "", created_at=clock.now())
        await uow.users.add(user)
        await audit(uow, "user.create", "user", user.id, None, user.snapshot(), who=who,
                    clock=clock, ids=ids)
        uow.events.record(USER_CREATED, messages.user_created(user, clock.now()), user.id)
        await uow.commit()
    return user


async def _visible_user(uow: IdentityUnitOfWork, who: Principal, user_id: str) -> User:
    """Oneself; for an HQ admin anyone; otherwise the staff of the dealers in scope (for
    a platform dealer's staff also its shared sub-dealers'); an ERP account no one."""
    user = await uow.users.get(user_id) if user_id else None
    if user is not None and user.id != who.user_id:
        now = await as_now(uow, who)
        if not now.has_role(Role.HQ_ADMIN):
            dealer = await uow.org_units.get(user.dealer_id) if user.dealer_id else None
            if dealer is None or not (await visibility(uow, now, "user.read")).sees(dealer):
                user = None
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def get_user(user_id: str, *, who: Principal, uow: IdentityUnitOfWork) -> User:
    async with uow.read():
        return await _visible_user(uow, who, user_id)


async def list_users(which: UserFilter, page: PageRequest, *, who: Principal,
                     uow: IdentityUnitOfWork) -> Page[User]:
    """The users (of those ``which`` selects) ``who`` may see, as in ``get_user``,
    oldest first."""
    async with uow.read():
        now = await as_now(uow, who)
        if not now.has_role(Role.HQ_ADMIN):
            seen = await visibility(uow, now, "user.read")
            which = replace(which, dealer_staff_only=True, or_user_id=now.user_id,
                            org_unit_ids=None if seen.everything else seen.dealer_ids)
        return await uow.users.page(which, page)


async def _managed_user(uow: IdentityUnitOfWork, who: Principal, user_id: str,
                        what: str) -> User:
    """A user ``who`` may administer: an HQ admin anyone, a dealer admin its own
    dealer's staff. Someone invisible is NOT_FOUND, someone visible but not
    administrable PERMISSION_DENIED."""
    user = await _visible_user(uow, who, user_id)
    if who.has_role(Role.HQ_ADMIN):
        return user
    if who.has_role(Role.DEALER_ADMIN) and user.dealer_id and user.dealer_id == who.dealer_id:
        return user
    raise PermissionDenied(f"only HQ admins and the user's dealer admin {what}")


def _revoke_older_tokens(uow: IdentityUnitOfWork, user: User, reason: str,
                         clock: Clock) -> float:
    """Record that every access token the user holds now is refused (everywhere, by the
    event); returns the moment (epoch seconds) a token must be issued after."""
    moment = clock.now()
    uow.events.record(SESSION_REVOKED, messages.tokens_issued_before(user.id, moment, reason),
                      user.id)
    return moment.timestamp()


async def update_user_roles(user_id: str, roles: Iterable[Role | None], reason: str, *,
                            who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                            ids: IdSource, revocations: Revocations,
                            expected_version: int = 0) -> User:
    """Roles take effect at once: the user's access tokens issued before the change are
    refused everywhere, and the next refresh carries the new roles. ``expected_version``
    (If-Match; 0: none) must still be the user's."""
    granted, problems = role_list(roles)
    collect(problems)
    async with uow:
        user = await _managed_user(uow, who, user_id, "change roles")
        check_version(f"user {user.id}", expected_version, user.version)
        if not who.has_role(Role.HQ_ADMIN) and not set(granted) <= DEALER_ROLES:
            raise PermissionDenied("a dealer admin may only grant dealer roles")
        _fit(granted, bool(user.dealer_id))
        if Role.CHANNEL_MANAGER not in granted and user.has_role(Role.CHANNEL_MANAGER):
            held = await uow.assignments.count_of(user.id)
            if held:
                raise FailedPrecondition(
                    f"the user still manages {held} dealer assignment(s); transfer them "
                    "first", violations=[FieldViolation("roles", "still has assignments")])
        changed = replace(user, roles=tuple(role.value for role in granted))
        if changed.roles == user.roles:
            return user
        await uow.users.update(changed)
        changed = replace(changed, version=await uow.users.next_version(user))
        await audit(uow, "user.roles.update", "user", user.id, user.snapshot(),
                    changed.snapshot(), reason, who=who, clock=clock, ids=ids)
        uow.events.record(USER_ROLES_CHANGED, messages.user_roles_changed(changed, user.roles),
                          user.id)
        moment = _revoke_older_tokens(uow, user, "roles_changed", clock)
        await uow.commit()
    # This process refuses the old tokens now; the others when the event arrives.
    revocations.revoke_issued_before(user.id, moment)
    return changed


async def change_password(user_id: str, current_password: str, new_password: str, *,
                          who: Principal, uow: IdentityUnitOfWork, passwords: Passwords,
                          clock: Clock, ids: IdSource, revocations: Revocations) -> None:
    """One's own password (with the current one), or a managed user's. Every session of
    the user ends: refresh tokens are revoked, access tokens refused everywhere
    (SessionRevoked); the user signs in again with the new password."""
    own = not user_id or user_id == who.user_id
    async with uow.read():
        if own:
            user = await uow.users.get(who.user_id) if who.user_id else None
            if user is None:
                raise NotFound("user not found")
        else:
            user = await _managed_user(uow, who, user_id, "reset passwords")
    if own:
        if not current_password:
            raise InvalidArgument.field("current_password", "is required")
        if not await passwords.verify(user.password_hash, current_password):
            raise InvalidArgument.field("current_password", "is wrong")
    collect([FieldViolation("new_password", v.description)
             for v in password_violations(new_password, user.username)])
    password_hash = await passwords.hash(new_password)
    async with uow:
        user = await uow.users.get(user.id) if own else \
            await _managed_user(uow, who, user.id, "reset passwords")
        if user is None:
            raise NotFound("user not found")
        await uow.users.update(replace(user, password_hash=password_hash, failed_logins=0,
                                       locked_until=None))
        await uow.refresh_tokens.revoke_all(user.id, clock.now())
        await audit(uow, "user.password.change", "user", user.id, None, None, who=who,
                    clock=clock, ids=ids)
        uow.events.record(USER_PASSWORD_CHANGED, messages.user_password_changed(user), user.id)
        moment = _revoke_older_tokens(uow, user, "password_changed", clock)
        await uow.commit()
    revocations.revoke_issued_before(user.id, moment)


async def deactivate_user(user_id: str, successor_id: str, reason: str, *, who: Principal,
                          uow: IdentityUnitOfWork, clock: Clock, ids: IdSource,
                          revocations: Revocations) -> User:
    """The user can no longer sign in and its sessions end at once; the dealers it
    manages pass to the successor (required when it manages any)."""
    async with uow:
        user = await _managed_user(uow, who, user_id, "deactivate users")
        if user.id == who.user_id:
            raise InvalidArgument.field("id", "you cannot deactivate yourself")
        if not user.active:
            raise FailedPrecondition(f"user {user_id} is already deactivated")
        if successor_id:
            await hand_over(uow, user.id, successor_id, [], [], reason,
                            field="successor_user_id", who=who, clock=clock, ids=ids)
        elif held := await uow.assignments.count_of(user.id):
            raise InvalidArgument.field(
                "successor_user_id", f"required: the user manages {held} dealer "
                                     "assignment(s) that must pass to a successor")
        gone = replace(user, active=False, deactivated_at=clock.now())
        await uow.users.update(gone)
        await uow.refresh_tokens.revoke_all(user.id, clock.now())
        await audit(uow, "user.deactivate", "user", user.id, user.snapshot(), gone.snapshot(),
                    reason, who=who, clock=clock, ids=ids)
        uow.events.record(USER_DEACTIVATED, messages.user_deactivated(
            gone, successor_id, reason, clock.now()), user.id)
        await uow.commit()
    revocations.revoke(user.id)
    return gone


async def load_revocations(*, uow: IdentityUnitOfWork, clock: Clock,
                           revocations: Revocations) -> None:
    """At start: users deactivated recently enough that a token of theirs may still be
    valid are refused."""
    async with uow.read():
        for user_id in await uow.users.deactivated_since(clock.now() - REVOCATION_MEMORY):
            revocations.revoke(user_id)
