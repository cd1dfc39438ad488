"""Migrations run once per release: the replicas of a new release start together, and
on PostgreSQL their migrators take turns under an advisory lock instead of racing (the
ones after the first find the schema current)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from shared.db import Database, migrate
from suite.services import bootstrap_of
from tests.harness import create_pg_databases, drop_pg_databases


@pytest.mark.postgres
async def test_three_migrators_at_once_all_succeed_and_migrate_once():
    prefix = f"qudao_t_{uuid.uuid4().hex[:10]}"
    url = (await create_pg_databases(prefix, ["order"]))["order"]
    try:
        migrations = bootstrap_of("order").MIGRATIONS
        results = await asyncio.gather(
            *(asyncio.to_thread(migrate, migrations, url) for _ in range(3)),
            return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        db = Database(url)
        try:
            async with db.read() as session:
                versions = (await session.execute(
                    text("SELECT count(*) FROM alembic_version"))).scalar_one()
                locks = (await session.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))).scalar_one()
        finally:
            await db.dispose()
        assert versions == 1
        assert locks == 0, "the lock is released with the migrator's session"
    finally:
        await drop_pg_databases(prefix, ["order"])
