"""Users and roles on in-memory collaborators: who may create and manage whom, role and
password changes revoking older tokens, deactivation with hand-over."""

from __future__ import annotations

import json

import pytest

from services.identity.domain.model import User, UserFilter
from services.identity.domain.rules import Role, Tier
from services.identity.usecases import assignments, sessions, users
from shared.context import Principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from shared.events.identity import (
    SESSION_REVOKED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_ROLES_CHANGED,
)
from shared.pagination import PageRequest
from tests.service.identity.fakes import Org
from tests.world import STAFF_PASSWORD


def fields_of(error) -> list[str]:
    return [v.field for v in error.value.violations]


async def dealer_world() -> tuple[Org, dict]:
    world = await Org.start()
    east = await world.region("east", "华东")
    own = await world.dealer(east)
    other = await world.dealer(east)
    await world.user("own.admin", (Role.DEALER_ADMIN,), own)
    return world, {"east": east, "own": own, "other": other}


async def create(world: Org, who: Principal, username: str, roles, unit, password=None):
    return await users.create_user(
        users.NewUser(username, password or STAFF_PASSWORD, tuple(roles), unit.id),
        who=who, uow=world.uow, passwords=world.deps.passwords, clock=world.deps.clock,
        ids=world.deps.ids)


async def login(world: Org, username: str, password: str = STAFF_PASSWORD):
    return await sessions.login(username, password, source="10.0.0.1", uow=world.uow,
                                passwords=world.deps.passwords, tokens=world.deps.tokens,
                                clock=world.deps.clock, limits=world.deps.sign_in)


def token_principal(world: Org, user: User) -> Principal:
    """The principal of an access token issued now."""
    p = user.principal
    return Principal(p.subject, p.user_id, p.username, p.roles, p.org_unit_id, p.dealer_id,
                     token_id="t", issued_at=world.deps.clock.now().timestamp())


async def test_a_dealer_admin_creates_only_its_own_staff_with_dealer_roles():
    world, u = await dealer_world()
    dealer_admin = await world.as_user("own.admin")
    staff = await create(world, dealer_admin, "Own.Sales ", [Role.DEALER_SALES], u["own"])
    assert (staff.username, staff.dealer_id) == ("own.sales", u["own"].id)
    with pytest.raises(NotFound):  # another dealer does not exist, for it
        await create(world, dealer_admin, "sneaky", [Role.DEALER_SALES], u["other"])
    with pytest.raises(PermissionDenied):
        await create(world, dealer_admin, "boss", [Role.HQ_ADMIN], u["own"])
    with pytest.raises(PermissionDenied):
        await create(world, await world.as_user("own.sales"), "x.sales", [Role.DEALER_SALES],
                     u["own"])
    [event] = world.uow.published_of(USER_CREATED)[-1:]
    assert event.user.username == "own.sales" and event.user.dealer_id == u["own"].id
    entry = world.uow.audit.entries[-1]
    assert entry.action == "user.create" and entry.actor == dealer_admin.subject
    assert "password" not in entry.after_json


async def test_bad_users_are_refused_by_field():
    world, u = await dealer_world()
    with pytest.raises(AlreadyExists) as error:
        await create(world, world.admin, "OWN.ADMIN", [Role.DEALER_SALES], u["own"])
    assert fields_of(error) == ["username"]
    with pytest.raises(InvalidArgument) as error:
        await create(world, world.admin, "weakling", [Role.DEALER_SALES], u["own"], "password")
    assert set(fields_of(error)) == {"password"}
    with pytest.raises(InvalidArgument) as error:
        await create(world, world.admin, "x", [None, Role.DEALER_SALES], u["own"])
    assert fields_of(error) == ["username", "roles[0]"]
    with pytest.raises(InvalidArgument) as error:  # dealer units take dealer roles only
        await create(world, world.admin, "misplaced", [Role.FINANCE], u["own"])
    assert fields_of(error) == ["roles"]
    with pytest.raises(InvalidArgument) as error:
        await create(world, world.admin, "hq.sales", [Role.DEALER_SALES], await world.hq())
    assert fields_of(error) == ["roles"]
    assert {user.username for user in world.uow.users.users.values()} == {"admin",
                                                                        "own.admin"}


async def test_who_sees_which_users():
    world, u = await dealer_world()
    hq = await world.hq()
    platform = await world.dealer(u["east"], tier=Tier.PLATFORM)
    shared = await world.dealer(u["east"], tier=Tier.TWO, platform_dealer_id=platform.id,
                                shared_with_platform=True)
    private = await world.dealer(u["east"], tier=Tier.TWO, platform_dealer_id=platform.id)
    for name, unit in (("other.sales", u["other"]), ("platform.sales", platform),
                       ("shared.sales", shared), ("private.sales", private)):
        await world.user(name, (Role.DEALER_SALES,), unit)
    for name, role in (("erp.feed", Role.ERP), ("fin.one", Role.FINANCE),
                       ("cm.one", Role.CHANNEL_MANAGER)):
        await world.user(name, (role,), hq)
    await assignments.assign_dealers((await world.as_user("cm.one")).user_id,
                                     [u["other"].id], [], "", **world.kw)

    async def visible(username: str, **query) -> set[str]:
        page = await users.list_users(UserFilter(**query), PageRequest(),
                                      who=await world.as_user(username), uow=world.uow)
        return {user.username for user in page.items}

    assert await visible("own.admin") == {"own.admin"}
    assert await visible("platform.sales") == {"platform.sales", "shared.sales"}
    assert await visible("erp.feed") == {"erp.feed"}
    assert await visible("cm.one") == {"cm.one", "other.sales"}
    assert await visible("fin.one") == {"fin.one", "own.admin", "other.sales",
                                        "platform.sales", "shared.sales", "private.sales"}
    assert await visible("fin.one", role=Role.DEALER_ADMIN) == {"own.admin"}
    assert await visible("admin", org_unit_id=hq.id) == {"admin", "erp.feed", "fin.one",
                                                         "cm.one"}
    assert await visible("admin", text="sales", org_unit_id=platform.id) == {"platform.sales"}
    private_staff = await world.uow.users.by_username("private.sales")
    with pytest.raises(NotFound):
        await users.get_user(private_staff.id, who=await world.as_user("platform.sales"),
                             uow=world.uow)
    assert (await users.get_user(private_staff.id, who=await world.as_user("fin.one"),
                                 uow=world.uow)).username == "private.sales"


async def test_a_role_change_refuses_older_tokens_and_keeps_assigned_dealers_covered():
    world, u = await dealer_world()
    staff = await world.user("rising.sales", (Role.DEALER_SALES,), u["own"])
    old_token = token_principal(world, staff)
    dealer_admin = await world.as_user("own.admin")
    with pytest.raises(PermissionDenied):
        await users.update_user_roles(staff.id, [Role.HQ_ADMIN], "", who=dealer_admin,
                                      uow=world.uow, clock=world.deps.clock, ids=world.deps.ids,
                                      revocations=world.deps.revocations)
    world.deps.clock.advance(seconds=1)
    promoted = await users.update_user_roles(
        staff.id, [Role.DEALER_ADMIN, Role.DEALER_SALES], "晋升", who=dealer_admin,
        uow=world.uow, clock=world.deps.clock, ids=world.deps.ids,
        revocations=world.deps.revocations)
    assert promoted.roles == ("dealer_admin", "dealer_sales")
    assert world.deps.revocations.is_revoked(old_token)
    assert not world.deps.revocations.is_revoked(token_principal(world, promoted))
    [changed] = world.uow.published_of(USER_ROLES_CHANGED)
    assert list(changed.previous_roles) and changed.dealer_id == u["own"].id
    [revoked] = world.uow.published_of(SESSION_REVOKED)
    assert revoked.reason == "roles_changed" and revoked.HasField("issued_before")
    entry = world.uow.audit.entries[-1]
    assert (entry.action, entry.reason) == ("user.roles.update", "晋升")

    # A channel manager who still holds dealers keeps the role until they pass on.
    manager = await world.user("cm.one", (Role.CHANNEL_MANAGER,), await world.hq())
    await assignments.assign_dealers(manager.id, [u["own"].id], [], "", **world.kw)
    with pytest.raises(FailedPrecondition):
        await users.update_user_roles(manager.id, [Role.FINANCE], "", **world.kw,
                                      revocations=world.deps.revocations)
    with pytest.raises(InvalidArgument) as error:
        await users.update_user_roles(manager.id, [], "", **world.kw,
                                      revocations=world.deps.revocations)
    assert fields_of(error) == ["roles"]


async def test_a_password_change_ends_every_session():
    world, u = await dealer_world()
    staff = await world.user("own.sales", (Role.DEALER_SALES,), u["own"])
    first = await login(world, "own.sales")
    second = await login(world, "own.sales")
    me = token_principal(world, staff)
    kw = dict(who=me, uow=world.uow, passwords=world.deps.passwords, clock=world.deps.clock,
              ids=world.deps.ids, revocations=world.deps.revocations)
    with pytest.raises(InvalidArgument) as error:
        await users.change_password("", "", "New-Passw0rd!2", **kw)
    assert fields_of(error) == ["current_password"]
    with pytest.raises(InvalidArgument) as error:
        await users.change_password("", "nope-Passw0rd!", "New-Passw0rd!2", **kw)
    assert fields_of(error) == ["current_password"]
    with pytest.raises(InvalidArgument) as error:
        await users.change_password(staff.id, STAFF_PASSWORD, "short", **kw)
    assert set(fields_of(error)) == {"new_password"}
    world.deps.clock.advance(seconds=1)
    await users.change_password("", STAFF_PASSWORD, "New-Passw0rd!2", **kw)
    for session in (first, second):
        with pytest.raises(Unauthenticated):
            await sessions.refresh(session.tokens.refresh_token, uow=world.uow,
                                   tokens=world.deps.tokens, clock=world.deps.clock,
                                   revocations=world.deps.revocations)
    assert world.deps.revocations.is_revoked(me)
    with pytest.raises(Unauthenticated):
        await login(world, "own.sales")
    assert (await login(world, "own.sales", "New-Passw0rd!2")).user.id == staff.id
    # A dealer admin resets its staff's password without knowing the old one.
    await users.change_password(staff.id, "", "Reset-Passw0rd!3", **{
        **kw, "who": await world.as_user("own.admin")})
    assert await login(world, "own.sales", "Reset-Passw0rd!3")


async def test_deactivation_hands_dealers_over_and_ends_sessions():
    world, u = await dealer_world()
    hq = await world.hq()
    leaving = await world.user("cm.one", (Role.CHANNEL_MANAGER,), hq)
    successor = await world.user("cm.two", (Role.CHANNEL_MANAGER,), hq)
    finance = await world.user("fin.one", (Role.FINANCE,), hq)
    await assignments.assign_dealers(leaving.id, [u["own"].id, u["other"].id], [], "",
                                     **world.kw)
    session = await login(world, "cm.one")
    kw = dict(**world.kw, revocations=world.deps.revocations)

    with pytest.raises(InvalidArgument) as error:
        await users.deactivate_user(leaving.id, "", "", **kw)
    assert fields_of(error) == ["successor_user_id"]
    with pytest.raises(InvalidArgument) as error:
        await users.deactivate_user(leaving.id, finance.id, "", **kw)
    assert fields_of(error) == ["successor_user_id"]
    with pytest.raises(InvalidArgument) as error:
        await users.deactivate_user(world.admin.user_id, "", "", **kw)
    assert fields_of(error) == ["id"]
    assert (await world.uow.users.get(leaving.id)).active

    gone = await users.deactivate_user(leaving.id, successor.id, "离职", **kw)
    assert not gone.active and gone.deactivated_at == world.deps.clock.now()
    assert await world.uow.assignments.dealer_ids_of(successor.id) == {u["own"].id,
                                                                       u["other"].id}
    assert await world.uow.assignments.count_of(leaving.id) == 0
    assert world.deps.revocations.is_revoked(leaving.principal)
    with pytest.raises(Unauthenticated) as error:
        await sessions.refresh(session.tokens.refresh_token, uow=world.uow,
                               tokens=world.deps.tokens, clock=world.deps.clock,
                               revocations=world.deps.revocations)
    with pytest.raises(Unauthenticated) as error:
        await login(world, "cm.one")
    # The same answer as a wrong password: a deactivated account is not told apart.
    assert error.value.reason == "BAD_CREDENTIALS"
    with pytest.raises(FailedPrecondition):
        await users.deactivate_user(leaving.id, "", "", **kw)
    [event] = world.uow.published_of(USER_DEACTIVATED)
    assert (event.user.id, event.successor_user_id, event.reason) == (
        leaving.id, successor.id, "离职")
    audited = [e for e in world.uow.audit.entries if e.target_id == leaving.id]
    assert [e.action for e in audited][-2:] == ["assignment.transfer", "user.deactivate"]
    assert json.loads(audited[-1].before_json)["active"] is True
    assert json.loads(audited[-1].after_json)["active"] is False

    # A process starting later refuses the user's tokens too.
    fresh = type(world.deps.revocations)()
    await users.load_revocations(uow=world.uow, clock=world.deps.clock, revocations=fresh)
    assert fresh.is_revoked(leaving.principal)


async def test_a_dealer_admin_deactivates_only_its_own_staff():
    world, u = await dealer_world()
    staff = await world.user("own.sales", (Role.DEALER_SALES,), u["own"])
    other = await world.user("other.sales", (Role.DEALER_SALES,), u["other"])
    dealer_admin = await world.as_user("own.admin")
    kw = dict(who=dealer_admin, uow=world.uow, clock=world.deps.clock, ids=world.deps.ids,
              revocations=world.deps.revocations)
    with pytest.raises(NotFound):
        await users.deactivate_user(other.id, "", "", **kw)
    assert not (await users.deactivate_user(staff.id, "", "", **kw)).active
    await world.user("rm.east", (Role.REGION_MANAGER,), u["east"])
    with pytest.raises(PermissionDenied):  # visible to the region manager, not its to manage
        await users.deactivate_user(other.id, "", "", **{
            **kw, "who": await world.as_user("rm.east")})
