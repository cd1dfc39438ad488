"""On SQLite every write transaction of a process queues for its turn (shared/db). The
outbox relay must not wait in that queue to publish: an event committed while other
writes are queued goes out at once, and its row is marked sent once the queue allows."""

from __future__ import annotations

import asyncio
import time
import uuid

import nats
from qudao.common.v1 import money_pb2
from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import MetaData, func, select

from shared.bus.envelope import decode_envelope
from shared.bus.outbox import Outbox, OutboxRelay, bus_tables
from shared.bus.streams import ensure_streams
from shared.db import Database
from shared.events.order import ORDER_SUBMITTED
from suite.natsserver import NatsServer
from tests.harness import eventually

BUSY_SECONDS = 3.0


def _submitted() -> tuple[events_pb2.OrderSubmitted, str]:
    order_id = str(uuid.uuid4())
    return events_pb2.OrderSubmitted(order=order_pb2.Order(
        id=order_id, dealer_id="d1",
        total=money_pb2.Money(amount_minor=100, currency="CNY"))), order_id


async def test_an_event_goes_out_while_other_writes_wait_for_their_turn(tmp_path):
    server = NatsServer(tmp_path / "nats")
    await asyncio.to_thread(server.start)
    metadata = MetaData()
    table, _inbox = bus_tables(metadata)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    outbox = Outbox(table, "order")
    received: dict[str, float] = {}
    watcher = await nats.connect(server.url)

    async def arrived(message) -> None:
        received[decode_envelope(message.subject, message.data).envelope.aggregate_id] = (
            time.monotonic())

    await watcher.subscribe("qudao.order.>", cb=arrived)
    await ensure_streams(watcher.jetstream(), ["order"], replicas=1)
    relay_nc = await nats.connect(server.url)
    relay = OutboxRelay(db, outbox, relay_nc.jetstream())
    relay_task = busy_task = None
    try:
        first, first_id = _submitted()
        async with db.write() as session:
            await outbox.record(session, ORDER_SUBMITTED, first, first_id)

        # A use case holds the writer's turn and records the second event; a long one
        # queues behind it before the relay starts, so the relay's writes queue after.
        second, second_id = _submitted()
        recorded, release = asyncio.Event(), asyncio.Event()
        busy_until = 0.0

        async def second_use_case() -> None:
            async with db.write() as session:
                await outbox.record(session, ORDER_SUBMITTED, second, second_id)
                recorded.set()
                await release.wait()

        async def long_use_case() -> None:
            nonlocal busy_until
            async with db.write():
                busy_until = time.monotonic() + BUSY_SECONDS
                await asyncio.sleep(BUSY_SECONDS)

        holder = asyncio.create_task(second_use_case())
        await recorded.wait()
        busy_task = asyncio.create_task(long_use_case())
        await asyncio.sleep(0.1)  # the long one is queued
        relay_task = asyncio.create_task(relay.run())
        await eventually(lambda: first_id in received, timeout=10)
        release.set()
        await holder
        await eventually(lambda: second_id in received, timeout=10)
        assert busy_until and received[second_id] < busy_until, (
            "the second event waited for the queued writes before going out")

        async def all_marked() -> bool:
            async with db.read() as session:
                return await session.scalar(select(func.count()).select_from(table).where(
                    table.c.published_at.is_(None))) == 0

        await eventually(all_marked, timeout=10)
        assert relay.published == 2
    finally:
        for task in (relay_task, busy_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await relay_nc.close()
        await watcher.close()
        await db.dispose()
        await asyncio.to_thread(server.stop)
