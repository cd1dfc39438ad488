"""Sign-in throttling holds across identity's replicas: the attempts an attacker spreads
over replicas behind a load balancer count together (one PostgreSQL database, two
replicas' connections), so the fifth wrong password locks that address out whichever
replica answers next, while the owner still signs in from the office."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest
from argon2 import PasswordHasher

from services.identity.adapters.orm import outbox_table
from services.identity.adapters.passwords import Argon2Passwords
from services.identity.adapters.uow import SqlIdentityUnitOfWork
from services.identity.bootstrap import MIGRATIONS
from services.identity.domain.throttle import SignInLimits
from services.identity.usecases import sessions, users
from shared.bus.outbox import Outbox
from shared.db import Database, migrate
from shared.errors import ResourceExhausted, Unauthenticated
from shared.ids import RandomIds
from shared.testing import FakeClock
from tests.conftest import require_postgres
from tests.harness import create_pg_databases, drop_pg_databases
from tests.service.identity.fakes import token_issuer


@pytest.fixture
async def identity_url():
    require_postgres()
    prefix = f"qs_{uuid.uuid4().hex[:8]}"
    urls = await create_pg_databases(prefix, ["identity"])
    try:
        # Alembic runs its own event loop: in a thread of its own.
        await asyncio.to_thread(migrate, MIGRATIONS, urls["identity"])
        yield urls["identity"]
    finally:
        await drop_pg_databases(prefix, ["identity"])


PASSWORD = "Office-Passw0rd!"
OFFICE, ATTACKER = "10.1.1.1", "203.0.113.9"


async def test_failures_spread_over_replicas_lock_the_address_out(identity_url):
    clock = FakeClock(datetime(2026, 11, 30, 9, 0, 30, tzinfo=UTC))
    passwords = Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    outbox = Outbox(outbox_table, "identity")
    replicas = [Database(identity_url), Database(identity_url)]
    try:
        uows = [partial(SqlIdentityUnitOfWork, db, outbox) for db in replicas]
        await users.ensure_bootstrap_admin("hq.admin", PASSWORD, uow=uows[0](),
                                           passwords=passwords, clock=clock, ids=RandomIds())
        tokens, limits = token_issuer(), SignInLimits(attempts_per_minute=20)

        def login(replica: int, password: str, source: str):
            return sessions.login("hq.admin", password, source=source, uow=uows[replica](),
                                  passwords=passwords, tokens=tokens, clock=clock,
                                  limits=limits)

        for attempt in range(5):  # round robin, as a load balancer would
            with pytest.raises(Unauthenticated):
                await login(attempt % 2, "wrong-Passw0rd!", ATTACKER)
        for replica in (0, 1):
            with pytest.raises(ResourceExhausted) as held:
                await login(replica, PASSWORD, ATTACKER)
            assert int(held.value.metadata["retry_after_seconds"]) == 15 * 60
        assert (await login(1, PASSWORD, OFFICE)).user.username == "hq.admin"

        # The per-account limit is shared too: 20 checks a minute over both replicas.
        limits.attempts_per_minute = 3
        clock.advance(minutes=20)
        for replica in (0, 1, 0):
            with pytest.raises(Unauthenticated):
                await login(replica, "wrong-Passw0rd!", f"198.51.100.{replica}")
        with pytest.raises(ResourceExhausted):
            await login(1, "wrong-Passw0rd!", "198.51.100.9")
        # From the office, where the owner signed in, the account limit does not apply.
        assert await login(0, PASSWORD, OFFICE)
        # Records that slow no one are dropped.
        clock.advance(days=2)
        assert (await sessions.forget_sign_ins(uow=uows[0](), clock=clock))["dropped"] >= 4
    finally:
        for db in replicas:
            await db.engine.dispose()
