"""Rebuilding a projection by replaying its producer's stream: an ordered consumer
reads the stream from the start up to its last message at the time, and each event of
the projection's subscription is applied through the same handler the live consumer
uses, with its inbox row, inside the rebuild's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from sqlalchemy import Table, delete, func, insert, select

from services.flow.adapters.repositories import PROJECTION_TABLES
from shared.bus.envelope import UndecodableEvent, decode_envelope, stream_name
from shared.events.catalog import EventType


@dataclass(frozen=True)
class ReplaySource:
    durable: str
    events: tuple[EventType, ...]
    handler: Callable[..., Awaitable[None]]


class StreamReplayer:
    def __init__(self, js: JetStreamContext, inbox: Table, sources: dict[str, ReplaySource],
                 deps_of: Callable[[], object]) -> None:
        self.js = js
        self.inbox = inbox
        self.sources = sources
        self.deps_of = deps_of

    async def replay(self, projection: str, uow) -> tuple[int, int]:
        source = self.sources[projection]
        session = uow.session
        await session.execute(delete(self.inbox).where(self.inbox.c.consumer == source.durable))
        producer = source.events[0].producer
        subjects = {event.subject for event in source.events}
        info = await self.js.stream_info(stream_name(producer))
        last = info.state.last_seq
        replayed = 0
        if last:
            # The stream is named, not looked up: a service's NATS user may not list
            # streams.
            subscription = await self.js.subscribe(
                f"qudao.{producer}.>", stream=stream_name(producer), ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL)
            try:
                while True:
                    message = await subscription.next_msg(timeout=10)
                    if message.subject in subjects:
                        try:
                            event = decode_envelope(message.subject, message.data)
                        except UndecodableEvent:
                            event = None
                        if event is not None:
                            await session.execute(insert(self.inbox).values(
                                consumer=source.durable, event_id=event.event_id,
                                subject=event.subject, processed_at=datetime.now(UTC)))
                            await source.handler(self.deps_of(), session, event)
                            replayed += 1
                    if message.metadata.sequence.stream >= last:
                        break
                    if replayed % 500 == 0:
                        await asyncio.sleep(0)
            finally:
                await subscription.unsubscribe()
        rows = 0
        for model in PROJECTION_TABLES[projection]:
            rows += (await session.execute(select(func.count()).select_from(model))).scalar_one()
        return replayed, rows
