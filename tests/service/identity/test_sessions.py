"""Login with lockout, refresh rotation, logout and revocation on in-memory
collaborators (real argon2id at its cheapest, really signed tokens)."""

from __future__ import annotations

from datetime import UTC

import pytest

from services.identity.domain.rules import Role
from services.identity.usecases import sessions, users
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, Unauthenticated
from shared.events.identity import SESSION_REVOKED, USER_LOGGED_IN
from tests.service.identity.fakes import Org, claims
from tests.world import STAFF_PASSWORD


async def staff_world() -> Org:
    world = await Org.start()
    east = await world.region("east", "华东")
    dealer = await world.dealer(east)
    await world.user("d.sales", (Role.DEALER_SALES,), dealer)
    return world


async def login(world: Org, username: str = "d.sales", password: str = STAFF_PASSWORD):
    return await sessions.login(username, password, uow=world.uow,
                                passwords=world.deps.passwords, tokens=world.deps.tokens,
                                clock=world.deps.clock)


async def refresh(world: Org, token: str):
    return await sessions.refresh(token, uow=world.uow, tokens=world.deps.tokens,
                                  clock=world.deps.clock)


async def refused(call) -> str:
    with pytest.raises(Unauthenticated) as error:
        await call
    return error.value.reason


async def test_login_issues_tokens_carrying_the_users_roles():
    world = await staff_world()
    session = await login(world, " D.Sales ")
    token = claims(session.tokens.access_token)
    assert token["name"] == "d.sales" and token["roles"] == ["dealer_sales"]
    assert token["dealer"] == session.user.dealer_id != ""
    assert token["iat"] == world.deps.clock.now().timestamp()
    assert session.tokens.expires_in_seconds == world.deps.tokens.ttl_seconds
    assert session.user.last_login_at == world.deps.clock.now()
    assert await refused(login(world, "nobody")) == "BAD_CREDENTIALS"
    with pytest.raises(InvalidArgument) as error:
        await login(world, "", "")
    assert [v.field for v in error.value.violations] == ["username", "password"]


async def test_a_login_is_published_with_the_dealer_and_a_failed_one_is_not():
    world = await staff_world()
    await refused(login(world, password="wrong-Passw0rd!"))
    assert world.uow.published_of(USER_LOGGED_IN) == []
    session = await login(world)
    (logged_in,) = world.uow.published_of(USER_LOGGED_IN)
    assert (logged_in.user_id, logged_in.dealer_id) == (session.user.id, session.user.dealer_id)
    assert logged_in.logged_in_at.ToDatetime(tzinfo=UTC) == world.deps.clock.now()


async def test_five_failures_lock_the_account_even_against_the_right_password():
    world = await staff_world()
    for _ in range(5):
        assert await refused(login(world, password="wrong-Passw0rd!")) == "BAD_CREDENTIALS"
    assert await refused(login(world)) == "LOCKED_OUT"
    world.deps.clock.advance(minutes=15)
    assert (await login(world)).user.failed_logins == 0  # the lock ran out
    # Locked again after five more; a further failure doubles the lock.
    for _ in range(5):
        await refused(login(world, password="wrong-Passw0rd!"))
    world.deps.clock.advance(minutes=15)
    await refused(login(world, password="wrong-Passw0rd!"))
    world.deps.clock.advance(minutes=16)
    assert await refused(login(world)) == "LOCKED_OUT"
    world.deps.clock.advance(minutes=15)
    assert await login(world)


async def test_a_refresh_token_works_once_and_not_after_it_expires():
    world = await staff_world()
    session = await login(world)
    renewed = await refresh(world, session.tokens.refresh_token)
    assert renewed.refresh_token != session.tokens.refresh_token
    assert await refused(refresh(world, session.tokens.refresh_token)) == "REFRESH_INVALID"
    world.deps.clock.advance(days=14)
    assert await refused(refresh(world, renewed.refresh_token)) == "REFRESH_INVALID"
    with pytest.raises(InvalidArgument):
        await refresh(world, "")


async def test_a_refresh_brings_the_roles_as_they_are_now():
    world = await staff_world()
    session = await login(world)
    world.deps.clock.advance(seconds=1)
    await users.update_user_roles(session.user.id, [Role.DEALER_ADMIN], "", **world.kw,
                                  revocations=world.deps.revocations)
    world.deps.clock.advance(seconds=1)
    renewed = await refresh(world, session.tokens.refresh_token)
    assert claims(renewed.access_token)["roles"] == ["dealer_admin"]


async def test_logout_ends_the_refresh_token_and_the_access_token_everywhere():
    world = await staff_world()
    session = await login(world)
    other = await login(world)
    token = claims(session.tokens.access_token)
    me = Principal(subject=token["sub"], user_id=token["uid"], token_id=token["jti"],
                   issued_at=token["iat"])
    await sessions.logout(session.tokens.refresh_token, who=me, uow=world.uow,
                          clock=world.deps.clock, revocations=world.deps.revocations)
    assert world.deps.revocations.is_revoked(me)
    [revoked] = world.uow.published_of(SESSION_REVOKED)
    assert (revoked.token_id, revoked.reason) == (token["jti"], "logout")
    assert await refused(refresh(world, session.tokens.refresh_token)) == "REFRESH_INVALID"
    # The user's other session is untouched.
    assert await refresh(world, other.tokens.refresh_token)
    # Without an access token, only the refresh token ends (and nothing is announced).
    anonymous = Principal(subject="anonymous")
    await sessions.logout(other.tokens.refresh_token, who=anonymous, uow=world.uow,
                          clock=world.deps.clock, revocations=world.deps.revocations)
    assert len(world.uow.published_of(SESSION_REVOKED)) == 1


async def test_who_am_i():
    world = await staff_world()
    session = await login(world)
    me = await sessions.who_am_i(who=session.user.principal, uow=world.uow)
    assert me.username == "d.sales"
    with pytest.raises(NotFound):
        await sessions.who_am_i(who=Principal(subject="service:erp"), uow=world.uow)
