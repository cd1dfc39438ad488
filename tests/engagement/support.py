"""Helpers for the engagement tests through the real suite: the service restarted on a
clock the test moves, and reads through the gateway that wait for events to land."""

from __future__ import annotations

from datetime import UTC, datetime

from services.engagement import bootstrap
from shared.host import ServiceHost
from shared.testing import FakeClock
from tests.harness import Suite, eventually

FAST_SWEEPS = {"QUDAO_ENGAGEMENT_OPTION_TASK_SWEEP_SECONDS": "0.2",
               "QUDAO_ENGAGEMENT_OPTION_HEALTH_SWEEP_SECONDS": "0.5"}


async def engagement_on_a_clock(suite: Suite) -> FakeClock:
    """Restart the engagement service (same database and durable consumers) on a clock
    that stands at the real time until the test moves it, with fast sweeps."""
    clock = FakeClock(datetime.now(UTC))
    await suite.stop_service("engagement")
    settings = bootstrap.Settings.from_env({**suite.env(), **FAST_SWEEPS})
    host = ServiceHost(settings, await bootstrap.build(settings, clock=clock))
    await host.start()
    suite.hosts["engagement"] = host
    return clock


async def get_json(suite: Suite, token: str, path: str, **params) -> dict:
    async with suite.client(token) as client:
        response = await client.get(path, params=params or None)
        assert response.status_code == 200, response.text
        return response.json()


async def wait_for(suite: Suite, token: str, path: str, found, timeout: float = 15, **params):
    """Poll ``path`` until ``found(body)`` is truthy; returns what it returned."""
    async def check():
        return found(await get_json(suite, token, path, **params))

    return await eventually(check, timeout=timeout)
