"""The bus's delivery guarantees against a real nats-server that the tests kill and
restart, with the real services' tables and handlers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import nats
import pytest
from qudao.common.v1 import money_pb2
from qudao.order.v1 import events_pb2 as order_events
from qudao.order.v1 import order_pb2
from sqlalchemy import func, select

from services.incentive.adapters.orm import AccrualRow
from services.incentive.adapters.orm import inbox_table as incentive_inbox
from services.order.adapters.orm import outbox_table as order_outbox
from shared.bus.consumer import ConsumerRunner, Subscription
from shared.bus.deadletter import read_dead_letters, replay_dead_letters
from shared.bus.envelope import build_envelope, decode_envelope
from shared.bus.streams import ensure_streams
from shared.db import Database, migrate
from shared.events.order import ORDER_SUBMITTED
from tests.harness import Suite, eventually
from tests.world import build_world

ORDER_LINES = [{"product_code": "A-001", "quantity": 2}]


# Commission is accrued on approved orders (never on a submitted one) under this rule.
ORDERS_RULE = {"rule": {"name": "订单佣金", "base": "approved_orders", "base_rate_bps": 200,
                        "valid_from": "2000-01-01"}}


async def count_accruals(suite: Suite, order_id: str) -> int:
    async with suite.hosts["incentive"].wiring.db.read() as session:
        return await session.scalar(
            select(func.count()).select_from(AccrualRow).where(AccrualRow.unit_id == order_id))


async def commission_on_orders(suite: Suite, world) -> None:
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/commission-rules", json=ORDERS_RULE)
        assert response.status_code == 201, response.text


async def approved_order(suite: Suite, world) -> str:
    """A dealer's order, submitted and approved at both stages through the gateway."""
    async with suite.client(world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={"lines": ORDER_LINES})
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    async with suite.client(world.admin_token) as admin:
        for stage in ("channel_manager", "finance"):
            response = await admin.post(f"/api/v1/orders/{order_id}/approve",
                                        json={"stage": stage})
            assert response.status_code == 200, response.text
    return order_id


async def submitted_messages_in_stream(suite: Suite) -> int:
    nc = await nats.connect(suite.nats.url)
    try:
        info = await nc.jetstream().stream_info("QUDAO_ORDER",
                                                subjects_filter="qudao.order.order.submitted")
        return (info.state.subjects or {}).get("qudao.order.order.submitted", 0)
    finally:
        await nc.close()


def order_event(dealer_id: str) -> tuple[str, bytes]:
    order_id = str(uuid.uuid4())
    envelope = build_envelope("order", order_events.OrderSubmitted(
        order=_order(order_id, dealer_id)), order_id)
    return order_id, envelope.SerializeToString()


def _order(order_id: str, dealer_id: str) -> order_pb2.Order:
    return order_pb2.Order(
        id=order_id, dealer_id=dealer_id,
        lines=[order_pb2.OrderLine(line_no=1, product_code="A-001", product_line="A系列",
                                   quantity_ordered=8,
                                   amount=money_pb2.Money(amount_minor=100_000, currency="CNY"))],
        total=money_pb2.Money(amount_minor=100_000, currency="CNY"))


def approved_event(dealer_id: str) -> tuple[str, bytes]:
    """An order's final approval, as order publishes it."""
    order_id = str(uuid.uuid4())
    envelope = build_envelope("order", order_events.OrderApproved(
        order=_order(order_id, dealer_id), stage=order_pb2.APPROVAL_STAGE_FINANCE,
        fully_approved=True), order_id)
    return order_id, envelope.SerializeToString()


async def test_outbox_event_survives_nats_killed_between_commit_and_publish(suite, world):
    """The order is submitted and approved while NATS is dead; after a restart its events
    arrive, once."""
    await commission_on_orders(suite, world)
    suite.nats.stop(kill=True)
    order_id = await approved_order(suite, world)

    async with suite.hosts["order"].wiring.db.read() as session:
        unpublished = await session.scalar(
            select(func.count()).select_from(order_outbox).where(
                order_outbox.c.aggregate_id == order_id, order_outbox.c.published_at.is_(None)))
    # Submitted, approved by the channel manager, approved by finance.
    assert unpublished == 3, "the events are committed in the outbox while NATS is down"

    await asyncio.to_thread(suite.nats.start)
    await eventually(lambda: count_accruals(suite, order_id), timeout=30)
    # Let the relay and consumer settle, then check nothing arrived twice.
    await eventually(lambda: _all_published(suite), timeout=10)
    assert await count_accruals(suite, order_id) == 1
    assert await submitted_messages_in_stream(suite) == 1


async def _all_published(suite: Suite) -> bool:
    async with suite.hosts["order"].wiring.db.read() as session:
        return await session.scalar(select(func.count()).select_from(order_outbox).where(
            order_outbox.c.published_at.is_(None))) == 0


async def test_same_event_delivered_twice_accrues_once(suite, world):
    """A repeat publish past JetStream's duplicate window (a new Nats-Msg-Id) is caught by
    the consumer's inbox."""
    await commission_on_orders(suite, world)
    order_id, data = approved_event(world.dealers[0].id)
    nc = await nats.connect(suite.nats.url)
    try:
        js = nc.jetstream()
        for attempt in range(2):
            await js.publish("qudao.order.order.approved", data,
                             headers={"Nats-Msg-Id": f"{order_id}-{attempt}"})
        later_id, later = approved_event(world.dealers[0].id)
        await js.publish("qudao.order.order.approved", later)
    finally:
        await nc.close()
    # The later event is processed after both copies, so by then both were seen.
    await eventually(lambda: count_accruals(suite, later_id), timeout=15)
    assert await count_accruals(suite, order_id) == 1
    async with suite.hosts["incentive"].wiring.db.read() as session:
        inbox_rows = await session.scalar(select(func.count()).select_from(incentive_inbox).where(
            incentive_inbox.c.subject == "qudao.order.order.approved"))
    assert inbox_rows == 2


class HangsBeforeAck(ConsumerRunner):
    """Commits the effect of an order's final approval, then never acks: the process
    dies here. (Earlier events of the same consumer are handled as usual.)"""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.committed = asyncio.Event()

    async def _handle_batch(self, subscription, messages):
        events = [(m, decode_envelope(m.subject, m.data)) for m in messages]
        if not any(getattr(event.payload, "fully_approved", False) for _, event in events):
            await super()._handle_batch(subscription, messages)
            return
        outcomes = await self._apply_batch(subscription, events)
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        self.committed.set()
        await asyncio.Event().wait()


async def test_redelivery_after_crash_before_ack_accrues_once(tmp_path):
    suite = await Suite(tmp_path, options={
        "QUDAO_INCENTIVE_OPTION_ACK_WAIT_SECONDS": "1"}).start()
    try:
        world = await build_world(suite, dealers=1)
        await commission_on_orders(suite, world)
        incentive = suite.hosts["incentive"]
        runner = incentive.wiring.workers[1].__self__
        orders = next(s for s in runner.subscriptions if s.durable == "incentive-order")
        await suite.stop_service("incentive")

        # A stand-in incentive process that crashes after its commit, before the ack.
        nc = await nats.connect(suite.nats.url)
        db = Database(suite.database_urls["incentive"])
        crashing = HangsBeforeAck(db, nc, incentive_inbox, [orders], runner.deps, ack_wait=1)
        task = asyncio.create_task(crashing.run())
        order_id = await approved_order(suite, world)
        await asyncio.wait_for(crashing.committed.wait(), 15)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()
        await db.dispose()

        # The real service comes back; JetStream redelivers the unacked event.
        await suite.start_service("incentive")
        nc = await nats.connect(suite.nats.url)
        try:
            js = nc.jetstream()

            async def settled():
                info = await js.consumer_info("QUDAO_ORDER", "incentive-order")
                return info.num_ack_pending == 0 and info.num_pending == 0 and (
                    info.num_redelivered == 0 and info.ack_floor.stream_seq >= 1)

            await eventually(settled, timeout=20)
        finally:
            await nc.close()
        assert await count_accruals(suite, order_id) == 1
    finally:
        await suite.stop()


async def test_poison_message_is_dead_lettered_and_consumer_moves_on(tmp_path):
    from suite.natsserver import NatsServer

    server = NatsServer(tmp_path / "nats")
    server.start()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'incentive.db'}")
    from services.incentive.bootstrap import MIGRATIONS

    await asyncio.to_thread(migrate, MIGRATIONS, db.url)
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await ensure_streams(js, ["order"], replicas=1)
    handled: list[str] = []
    poison_id = "poison-order"
    broken = True

    async def handler(_deps, session, event):
        if broken and event.payload.order.id == poison_id:
            raise ValueError("cannot accrue this order")
        handled.append(event.payload.order.id)

    runner = ConsumerRunner(db, nc, incentive_inbox, [Subscription(
        "test-poison", (ORDER_SUBMITTED,), handler)],
        max_deliveries=3, retry_base_delay=0.05)
    task = asyncio.create_task(runner.run())
    try:
        order = order_pb2.Order(id=poison_id, dealer_id="d1")
        poison = build_envelope("order", order_events.OrderSubmitted(order=order), poison_id)
        await js.publish("qudao.order.order.submitted", poison.SerializeToString())
        await js.publish("qudao.order.order.submitted", b"\x00not a protobuf envelope\xff")
        good_id, good = order_event("d1")
        await js.publish("qudao.order.order.submitted", good)

        await eventually(lambda: good_id in handled, timeout=15)
        letters = await eventually(lambda: _two_letters(js), timeout=15)
        by_event = {m.headers.get("Qudao-Event-Id", ""): m for m in letters}
        assert by_event[poison.event_id].headers["Qudao-Deliveries"] == "3"
        assert "cannot accrue this order" in by_event[poison.event_id].headers["Qudao-Error"]
        assert by_event[""].headers["Qudao-Error"].startswith("undecodable")
        assert all(m.subject == "qudao.dlq.test.test-poison" for m in letters)
        assert handled == [good_id]

        # The cause is fixed; the ops CLI replays the dead letters and the event applies.
        broken = False
        await replay_dead_letters(server.url, "test-poison")
        await eventually(lambda: poison_id in handled, timeout=15)
        # Bytes that are no event at all stay dead, whatever is replayed.
        remaining = await eventually(lambda: _one_letter(js), timeout=15)
        assert remaining.headers["Qudao-Error"].startswith("undecodable")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()
        await db.dispose()
        server.stop()


async def _one_letter(js):
    letters = await read_dead_letters(js, "test-poison")
    return letters[0] if len(letters) == 1 else None


async def _two_letters(js):
    letters = await read_dead_letters(js, "test-poison")
    return letters if len(letters) == 2 else None


@pytest.mark.parametrize("kill", [False, True], ids=["graceful", "killed"])
async def test_idle_consumer_recovers_after_server_restart(suite, world, kill):
    """An idle consumer receives an event published after a NATS restart, without a
    restart of its own."""
    await commission_on_orders(suite, world)
    runner = suite.hosts["incentive"].wiring.workers[1].__self__
    await asyncio.sleep(0)  # the consumer is idle: nothing published yet
    await asyncio.to_thread(suite.nats.restart, kill)
    order_id = await approved_order(suite, world)
    await eventually(lambda: count_accruals(suite, order_id), timeout=20)
    assert suite.hosts["incentive"].wiring.workers[1].__self__ is runner
