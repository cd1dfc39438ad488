"""Login slowed per source and account, refresh rotation with reuse detection, logout
and revocation on in-memory collaborators (real argon2id at its cheapest, really signed
tokens)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import pytest

from services.identity.domain.rules import Role
from services.identity.usecases import sessions, users
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, ResourceExhausted, Unauthenticated
from shared.events.identity import SESSION_REVOKED, USER_LOGGED_IN
from tests.service.identity.fakes import Org, claims
from tests.world import STAFF_PASSWORD


async def staff_world() -> Org:
    world = await Org.start()
    east = await world.region("east", "华东")
    dealer = await world.dealer(east)
    await world.user("d.sales", (Role.DEALER_SALES,), dealer)
    return world


OFFICE, ATTACKER = "10.1.1.1", "203.0.113.9"
WRONG = "wrong-Passw0rd!"


async def login(world: Org, username: str = "d.sales", password: str = STAFF_PASSWORD,
                source: str = OFFICE):
    return await sessions.login(username, password, source=source, uow=world.uow,
                                passwords=world.deps.passwords, tokens=world.deps.tokens,
                                clock=world.deps.clock, limits=world.deps.sign_in)


async def refresh(world: Org, token: str):
    return await sessions.refresh(token, uow=world.uow, tokens=world.deps.tokens,
                                  clock=world.deps.clock, revocations=world.deps.revocations)


async def throttled(call) -> int:
    """The Retry-After seconds of a refused attempt."""
    with pytest.raises(ResourceExhausted) as error:
        await call
    return int(error.value.metadata["retry_after_seconds"])


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


async def test_five_failures_lock_that_source_out_but_not_the_owner_elsewhere():
    world = await staff_world()
    for _ in range(5):
        assert await refused(login(world, password=WRONG, source=ATTACKER)) == "BAD_CREDENTIALS"
    # The attacker's address is held back, even with the right password...
    assert await throttled(login(world, source=ATTACKER)) == 15 * 60
    # ...while the owner, from the office, signs in.
    assert await login(world, source=OFFICE)
    world.deps.clock.advance(minutes=15)
    assert await login(world, source=ATTACKER)  # the lock ran out
    # Five more failures lock again; each further failure doubles the lock.
    for _ in range(5):
        await refused(login(world, password=WRONG, source=ATTACKER))
    world.deps.clock.advance(minutes=15)
    await refused(login(world, password=WRONG, source=ATTACKER))
    assert await throttled(login(world, source=ATTACKER)) == 30 * 60
    assert await login(world, source=OFFICE)


async def test_every_refusal_looks_the_same_and_checks_a_password_hash():
    world = await staff_world()
    dealer = (await world.uow.users.by_username("d.sales")).org_unit_id
    await world.user("gone.sales", (Role.DEALER_SALES,), await world.uow.org_units.get(dealer))
    gone = await world.uow.users.by_username("gone.sales")
    await world.uow.users.update(replace(gone, active=False))
    checks = []
    real_verify = world.deps.passwords.verify

    async def counting(password_hash, password):
        checks.append(password_hash)
        return await real_verify(password_hash, password)

    world.deps.passwords.verify = counting
    answers = [await refused(login(world, "nobody")),                # unknown
               await refused(login(world, "gone.sales")),            # deactivated
               await refused(login(world, password=WRONG))]          # wrong password
    assert answers == ["BAD_CREDENTIALS"] * 3
    assert len(checks) == 3  # a hash was checked each time (a dummy for "nobody")
    # Unknown names are throttled like known ones: nothing tells them apart.
    for _ in range(5):
        await refused(login(world, "nobody", source=ATTACKER))
        await refused(login(world, password=WRONG, source=ATTACKER))
    assert await throttled(login(world, "nobody", source=ATTACKER)) == \
        await throttled(login(world, source=ATTACKER))


async def test_a_guessing_run_spread_over_addresses_is_limited_per_account():
    world = await staff_world()
    assert await login(world, source=OFFICE)  # the owner has signed in from the office
    world.deps.sign_in.attempts_per_minute = 10
    for number in range(9):  # ten checks of its password in a minute, the owner's included
        await refused(login(world, password=WRONG, source=f"198.51.100.{number}"))
    wait = await throttled(login(world, password=WRONG, source="198.51.100.200"))
    assert 0 < wait <= 60
    # Where the owner signed in before, the account's limit does not apply.
    assert await login(world, source=OFFICE)
    world.deps.clock.advance(seconds=wait)
    await refused(login(world, password=WRONG, source="198.51.100.201"))


async def test_a_refresh_token_works_once_and_not_after_it_expires():
    world = await staff_world()
    session = await login(world)
    renewed = await refresh(world, session.tokens.refresh_token)
    assert renewed.refresh_token != session.tokens.refresh_token
    world.deps.clock.advance(days=14)
    assert await refused(refresh(world, renewed.refresh_token)) == "REFRESH_INVALID"
    with pytest.raises(InvalidArgument):
        await refresh(world, "")


async def test_a_used_refresh_token_coming_back_ends_every_session_of_the_user():
    world = await staff_world()
    stolen = await login(world)
    laptop = await login(world)
    thief = await refresh(world, stolen.tokens.refresh_token)  # the thief rotates first
    world.deps.clock.advance(seconds=1)
    # The owner's copy of the used token comes back: a reuse.
    assert await refused(refresh(world, stolen.tokens.refresh_token)) == "REFRESH_INVALID"
    assert await refused(refresh(world, thief.refresh_token)) == "REFRESH_INVALID"
    assert await refused(refresh(world, laptop.tokens.refresh_token)) == "REFRESH_INVALID"
    # Access tokens issued until now are refused everywhere.
    [revoked] = world.uow.published_of(SESSION_REVOKED)
    assert revoked.reason == "refresh_token_reused"
    thief_principal = Principal(subject=f"user:{stolen.user.id}", user_id=stolen.user.id,
                                issued_at=claims(thief.access_token)["iat"])
    assert world.deps.revocations.is_revoked(thief_principal)
    # The owner signs in again.
    world.deps.clock.advance(seconds=1)
    assert await refresh(world, (await login(world)).tokens.refresh_token)


async def test_a_signed_out_refresh_token_is_no_reuse():
    world = await staff_world()
    session, other = await login(world), await login(world)
    await sessions.logout(session.tokens.refresh_token, who=Principal(subject="anonymous"),
                          uow=world.uow, clock=world.deps.clock,
                          revocations=world.deps.revocations)
    assert await refused(refresh(world, session.tokens.refresh_token)) == "REFRESH_INVALID"
    assert await refresh(world, other.tokens.refresh_token)  # the other session lives


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
