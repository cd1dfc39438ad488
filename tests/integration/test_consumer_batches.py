"""A consumer applies a pulled batch in one transaction, without a savepoint per event
when every event succeeds; when one fails, it alone is rolled back and the others of the
batch still take effect, once."""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client
from nats.aio.msg import Msg
from qudao.order.v1 import events_pb2 as order_events
from qudao.order.v1 import order_pb2
from sqlalchemy import insert, select

from services.incentive.adapters.orm import inbox_table
from services.incentive.bootstrap import MIGRATIONS
from shared.bus.consumer import ConsumerRunner, Subscription
from shared.bus.envelope import build_envelope, decode_envelope
from shared.db import Database, migrate
from shared.events.order import ORDER_SUBMITTED


def _submitted(order_id: str) -> tuple[Msg, object]:
    envelope = build_envelope("order", order_events.OrderSubmitted(
        order=order_pb2.Order(id=order_id, dealer_id="d1")), order_id)
    message = Msg(_client=None, subject=ORDER_SUBMITTED.subject,
                  data=envelope.SerializeToString())
    return message, decode_envelope(message.subject, message.data)


async def test_a_failing_event_rolls_back_alone_and_the_rest_of_its_batch_applies(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'incentive.db'}"
    await asyncio.to_thread(migrate, MIGRATIONS, url)
    db = Database(url)

    async def handler(_deps, session, event) -> None:
        # The effect: a row of its own (in the inbox table, under another consumer).
        await session.execute(insert(inbox_table).values(
            consumer="effects", event_id=event.event_id, subject=event.subject,
            processed_at=event.envelope.occurred_at.ToDatetime()))
        if event.payload.order.id.startswith("poison"):
            raise ValueError("cannot apply this order")

    subscription = Subscription("test-batches", (ORDER_SUBMITTED,), handler)
    runner = ConsumerRunner(db, Client(), inbox_table, [subscription])
    batch = [_submitted(f"good-{uuid.uuid4()}"), _submitted(f"poison-{uuid.uuid4()}"),
             _submitted(f"good-{uuid.uuid4()}")]
    try:
        outcomes = await runner._apply_batch(subscription, batch)
        assert outcomes[0] == "applied" and outcomes[2] == "applied"
        assert isinstance(outcomes[1], ValueError)

        async with db.read() as session:
            rows = set((await session.execute(select(
                inbox_table.c.consumer, inbox_table.c.event_id))).all())
        good = {batch[0][1].event_id, batch[2][1].event_id}
        assert rows == {(consumer, event_id) for consumer in ("test-batches", "effects")
                        for event_id in good}

        # Redelivered: the applied ones are duplicates, the failing one fails again.
        again = await runner._apply_batch(subscription, batch)
        assert again[0] == again[2] == "duplicate" and isinstance(again[1], ValueError)
    finally:
        await db.dispose()
