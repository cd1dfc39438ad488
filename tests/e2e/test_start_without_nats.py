"""A service (re)started while NATS is away starts all the same: it answers, takes
orders (its outbox holds their events), reports NOT_SERVING, and once NATS is back
declares its stream, publishes what it held and reports SERVING."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.events.order import ORDER_SUBMITTED
from tests.harness import eventually, subject_count
from tests.world import build_world


async def health(suite, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports[service]}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=2)
    return response.status


async def submitted_events(suite) -> int:
    return await subject_count(suite.nats.url, "QUDAO_ORDER", ORDER_SUBMITTED.subject)


async def test_order_restarted_while_nats_is_down_takes_orders_and_catches_up(suite):
    world = await build_world(suite, dealers=1)
    dealer = world.dealers[0]
    await asyncio.to_thread(suite.nats.stop)
    await suite.stop_service("order")
    started = time.monotonic()
    await asyncio.wait_for(suite.start_service("order"), 30)
    assert time.monotonic() - started < 20
    assert await health(suite, "order") == health_pb2.HealthCheckResponse.NOT_SERVING
    async with suite.client(dealer.token) as client:
        response = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 2}],
            "client_order_ref": "PO-NO-NATS"})
    assert response.status_code == 201, response.text

    await asyncio.to_thread(suite.nats.start)
    await eventually(lambda: _serving(suite, "order"), timeout=15)
    # The order taken during the outage reached the stream once NATS came back.
    await eventually(lambda: _events_at_least(suite, 1), timeout=15)
    assert await submitted_events(suite) == 1


async def _serving(suite, service: str) -> bool:
    return await health(suite, service) == health_pb2.HealthCheckResponse.SERVING


async def _events_at_least(suite, count: int) -> bool:
    return await submitted_events(suite) >= count
