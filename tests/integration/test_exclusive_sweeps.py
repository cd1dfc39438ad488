"""A sweep every replica runs on a timer (engagement's overdue tasks and dealer health)
runs in one replica at a time on PostgreSQL: while one holds it, another's transaction
is told to skip; once the first ends, the next may run. Two replicas overlap at least
during a rolling update, and each would otherwise notify the same supervisors."""

from __future__ import annotations

import uuid

import pytest

from shared.db import Database
from shared.uow import UnitOfWork
from tests.conftest import require_postgres
from tests.harness import create_pg_databases, drop_pg_databases


@pytest.fixture
async def pg_url():
    require_postgres()
    prefix = f"qx_{uuid.uuid4().hex[:8]}"
    urls = await create_pg_databases(prefix, ["sweeps"])
    try:
        yield urls["sweeps"]
    finally:
        await drop_pg_databases(prefix, ["sweeps"])


async def test_one_replica_sweeps_at_a_time(pg_url):
    replicas = [Database(pg_url), Database(pg_url)]
    try:
        # Nothing here commits, so no outbox is needed.
        first, second = (UnitOfWork(db, None) for db in replicas)
        async with first:
            assert await first.exclusive("engagement.task_sweep")
            async with second:
                assert not await second.exclusive("engagement.task_sweep")
                # Another sweep's name is another lock.
                assert await second.exclusive("engagement.health_sweep")
        again = UnitOfWork(replicas[1], None)
        async with again:
            assert await again.exclusive("engagement.task_sweep")
    finally:
        for db in replicas:
            await db.engine.dispose()
