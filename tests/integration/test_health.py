"""gRPC health follows the service's dependencies after start, not only at start."""

from __future__ import annotations

import asyncio

from tests.harness import eventually


async def test_services_report_not_serving_while_nats_is_down(suite):
    async with suite.client() as client:
        async def readiness():
            return (await client.get("/readyz")).json()

        assert (await readiness())["status"] == "ok"
        await asyncio.to_thread(suite.nats.stop)
        degraded = await eventually(lambda: _all_not_serving(readiness), timeout=10)
        assert degraded["status"] == "degraded"
        await asyncio.to_thread(suite.nats.start)
        await eventually(lambda: _status(readiness, "ok"), timeout=15)


async def _status(readiness, wanted: str):
    body = await readiness()
    return body if body["status"] == wanted else None


async def _all_not_serving(readiness):
    body = await readiness()
    return body if set(body["services"].values()) == {"NOT_SERVING"} else None
