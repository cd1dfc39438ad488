from __future__ import annotations

import os

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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_suite(tmp_path_factory):
    """One suite for a whole module whose tests only read, or write without interfering;
    such modules set ``pytestmark = pytest.mark.asyncio(loop_scope="module")``."""
    running = await Suite(tmp_path_factory.mktemp("suite")).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_world(shared_suite):
    return await build_world(shared_suite)


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_postgres() -> None:
    """Skip a PostgreSQL test on a developer's machine without the server; on CI
    (``CI=true``, where .ci/run starts it) a missing server fails the test instead."""
    if postgres_reachable():
        return
    message = "PostgreSQL is not reachable at 127.0.0.1:5432"
    if on_ci():
        pytest.fail(f"{message}, and CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") is not None:
        require_postgres()


def pytest_configure(config):
    from shared.logging import configure_logging

    configure_logging("tests", "WARNING", "console")
