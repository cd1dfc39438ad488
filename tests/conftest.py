from __future__ import annotations

import pytest
import pytest_asyncio

from tests.harness import Suite, postgres_reachable
from tests.world import build_world


@pytest_asyncio.fixture
async def suite(tmp_path):
    running = await Suite(tmp_path).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def world(suite):
    return await build_world(suite)


def require_postgres() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")


def pytest_configure(config):
    from shared.logging import configure_logging

    configure_logging("tests", "WARNING", "console")
