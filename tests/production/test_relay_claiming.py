"""Three replicas' relays on one outbox: every row is published by exactly one of them.

Each relay has its own engine (as three pods would) and its own NATS connection. A plain
core subscription on the producer's subjects sees every publish, duplicates included
(JetStream's duplicate window would hide them from the stream), so it counts what the
relays really sent."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import nats
import pytest
from qudao.common.v1 import money_pb2
from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import MetaData, func, select

from shared.bus.envelope import decode_envelope
from shared.bus.outbox import Outbox, OutboxRelay, bus_tables
from shared.bus.streams import ensure_streams
from shared.db import Database
from shared.events.order import ORDER_SUBMITTED
from suite.natsserver import NatsServer
from tests.harness import create_pg_databases, drop_pg_databases, eventually

EVENTS = 900


def _outbox_table():
    metadata = MetaData()
    outbox, _inbox = bus_tables(metadata)
    return metadata, outbox


async def _fill(db: Database, outbox: Outbox, count: int) -> None:
    batch = []
    for _ in range(count):
        order_id = str(uuid.uuid4())
        order = order_pb2.Order(id=order_id, dealer_id="d1",
                                total=money_pb2.Money(amount_minor=100, currency="CNY"))
        batch.append((ORDER_SUBMITTED, events_pb2.OrderSubmitted(order=order), order_id))
    async with db.write() as session:
        await outbox.record_all(session, batch)


async def _three_relays_publish_each_row_once(url: str, tmp_path) -> None:
    server = NatsServer(tmp_path / "nats")
    await asyncio.to_thread(server.start)
    metadata, table = _outbox_table()
    setup = Database(url)
    async with setup.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    outbox = Outbox(table, "order")
    await _fill(setup, outbox, EVENTS)

    seen: Counter[str] = Counter()
    watcher = await nats.connect(server.url)
    async def count(message) -> None:
        seen[decode_envelope(message.subject, message.data).event_id] += 1

    await watcher.subscribe("qudao.order.>", cb=count)
    await watcher.flush()
    await ensure_streams(watcher.jetstream(), ["order"], replicas=1)

    replicas = []
    for _ in range(3):
        nc = await nats.connect(server.url)
        db = Database(url)
        relay = OutboxRelay(db, Outbox(table, "order"), nc.jetstream(), batch_size=50,
                            poll_interval=0.05)
        replicas.append((nc, db, relay, asyncio.create_task(relay.run())))
    try:
        async def all_marked() -> bool:
            async with setup.read() as session:
                return await session.scalar(select(func.count()).select_from(table).where(
                    table.c.published_at.is_(None))) == 0

        await eventually(all_marked, timeout=60)
        await watcher.flush()
        await eventually(lambda: sum(seen.values()) >= EVENTS, timeout=10)
        assert len(seen) == EVENTS
        doubled = {event_id: n for event_id, n in seen.items() if n > 1}
        assert not doubled, f"{len(doubled)} rows published more than once"
        assert sum(relay.published for _, _, relay, _ in replicas) == EVENTS
        # The claim goes round: more than one replica did part of the work, or one held
        # it throughout; either way no row went out twice.
        info = await watcher.jetstream().stream_info("QUDAO_ORDER")
        assert info.state.messages == EVENTS
    finally:
        for nc, db, _relay, task in replicas:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await nc.close()
            await db.dispose()
        await watcher.close()
        await setup.dispose()
        await asyncio.to_thread(server.stop)


async def test_three_relays_on_one_sqlite_file_publish_each_row_once(tmp_path):
    await _three_relays_publish_each_row_once(
        f"sqlite+aiosqlite:///{tmp_path / 'order.db'}", tmp_path)


@pytest.mark.postgres
async def test_three_relays_on_one_postgres_database_publish_each_row_once(tmp_path):
    prefix = f"qudao_t_{uuid.uuid4().hex[:10]}"
    urls = await create_pg_databases(prefix, ["order"])
    try:
        await _three_relays_publish_each_row_once(urls["order"], tmp_path)
    finally:
        await drop_pg_databases(prefix, ["order"])
