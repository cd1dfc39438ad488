"""Durable JetStream consumers. Each event's effect and its inbox row are committed in
one transaction and the message is acked only after that commit, so redelivery never
counts twice. Failures are retried with backoff up to a bound, then the message goes to
the dead-letter subject and the consumer moves on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.bus.envelope import Event, UndecodableEvent, decode_envelope, stream_name
from shared.bus.pull import PullLoop
from shared.bus.streams import DEAD_LETTER_STREAM, dead_letter_subject
from shared.cancellation import raise_if_cancelled
from shared.context import Principal, principal_var, request_id_var
from shared.db import Database, insert_in
from shared.events.catalog import EventType
from shared.logging import get_logger

log = get_logger(__name__)

EVENTS_HANDLED = Counter(
    "qudao_consumer_events_total", "Events handled by consumers", ["consumer", "outcome"]
)
CONSUMER_PENDING = Gauge(
    "qudao_consumer_pending_events",
    "Events in the stream this consumer has not yet handled (its lag): not yet delivered "
    "plus delivered and awaiting their ack", ["consumer"])
CONSUMER_REDELIVERED = Gauge(
    "qudao_consumer_redelivered_events",
    "Events delivered more than once and not yet acknowledged", ["consumer"])
DEAD_LETTERS = Gauge(
    "qudao_dlq_events", "Events of this consumer waiting in the dead-letter stream",
    ["consumer"])
METRICS_INTERVAL_SECONDS = 15.0

# A handler gets the service's collaborators, the consumer's transaction (which also
# holds the inbox row) and the event.
Handler = Callable[[Any, AsyncSession, Event], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One durable consumer, ``<consumer-service>-<handler>``, of events of one producer.
    A service lists its subscriptions in ``consumers/__init__.py`` (SUBSCRIPTIONS); the
    runner calls ``handler(deps, session, event)`` with the deps it was given."""

    durable: str
    events: tuple[EventType, ...]
    handler: Handler = field(compare=False)

    def __post_init__(self) -> None:
        producers = {event.producer for event in self.events}
        if len(producers) != 1:
            raise ValueError(f"{self.durable}: a subscription reads one producer's stream, "
                             f"not {sorted(producers) or 'none'}")

    @property
    def producer(self) -> str:
        return self.events[0].producer

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(event.subject for event in self.events)


@contextlib.contextmanager
def _event_context(subscription: Subscription, message: Msg, event: Event):
    """The event's request id and principal for the handler and every log line."""
    headers = message.headers or {}
    request_token = request_id_var.set(
        event.envelope.request_id or headers.get("Qudao-Request-Id", ""))
    principal_token = principal_var.set(
        Principal(subject=event.envelope.principal or "service:unknown"))
    structlog.contextvars.bind_contextvars(event_id=event.event_id,
                                           consumer=subscription.durable)
    parent = (tracing.context_from(headers, event.envelope.traceparent
                                   if tracing.TRACEPARENT not in headers else "")
              if tracing.enabled() else None)
    try:
        with tracing.span(f"consume {subscription.durable}", tracing.SpanKind.CONSUMER,
                          parent=parent, attributes={"messaging.system": "nats",
                                                     "messaging.message.id": event.event_id,
                                                     "messaging.destination.name":
                                                         message.subject}):
            yield
    finally:
        structlog.contextvars.unbind_contextvars("event_id", "consumer")
        request_id_var.reset(request_token)
        principal_var.reset(principal_token)


class ConsumerRunner:
    def __init__(
        self,
        db: Database,
        nc: NatsClient,
        inbox: Table,
        subscriptions: list[Subscription],
        deps: Any = None,
        *,
        max_deliveries: int = 5,
        ack_wait: float = 30.0,
        batch_size: int = 64,
        pull_expires: float = 5.0,
        heartbeat: float = 1.0,
        retry_base_delay: float = 0.2,
    ) -> None:
        self.db = db
        self.nc = nc
        self.js = nc.jetstream()
        self.inbox = inbox
        # Built once: every delivered event runs it.
        self._record_delivery = insert_in(db.engine.dialect.name, inbox).on_conflict_do_nothing(
            index_elements=[inbox.c.consumer, inbox.c.event_id])
        self.subscriptions = subscriptions
        self.deps = deps
        self.max_deliveries = max_deliveries
        self.ack_wait = ack_wait
        self.batch_size = batch_size
        self.pull_expires = pull_expires
        self.heartbeat = heartbeat
        self.retry_base_delay = retry_base_delay
        self.resubscriptions = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for subscription in self.subscriptions:
                group.create_task(self._run_one(subscription), name=subscription.durable)
            group.create_task(self._report_lag(), name="consumer-lag")

    async def _report_lag(self, interval: float = METRICS_INTERVAL_SECONDS) -> None:
        """Lag and dead letters of each consumer, from the server, every ``interval``."""
        while True:
            for subscription in self.subscriptions:
                try:
                    await self.measure(subscription)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # not created yet, NATS away: next round
                    log.debug("consumer_lag_unknown", consumer=subscription.durable,
                              error=repr(exc))
            await asyncio.sleep(interval)

    async def measure(self, subscription: Subscription) -> tuple[int, int]:
        """Set and return (pending events, dead letters) of ``subscription``."""
        info = await self.js.consumer_info(stream_name(subscription.producer),
                                           subscription.durable)
        pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        CONSUMER_PENDING.labels(subscription.durable).set(pending)
        CONSUMER_REDELIVERED.labels(subscription.durable).set(info.num_redelivered or 0)
        subject = dead_letter_subject(subscription.durable)
        try:
            dlq = await self.js.stream_info(DEAD_LETTER_STREAM, subjects_filter=subject)
            dead = (dlq.state.subjects or {}).get(subject, 0)
        except NotFoundError:
            dead = 0
        DEAD_LETTERS.labels(subscription.durable).set(dead)
        return pending, dead

    async def _ensure_consumer(self, subscription: Subscription) -> None:
        # The producer owns its stream; until it has created it, this fails and the
        # runner retries with backoff.
        config = ConsumerConfig(
            durable_name=subscription.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # The runner applies its own retry bound and dead-letters; the server must
            # never silently stop delivering a message.
            max_deliver=-1,
            max_ack_pending=1000,
            filter_subjects=list(subscription.subjects),
        )
        await self.js.add_consumer(stream_name(subscription.producer), config)

    async def _run_one(self, subscription: Subscription) -> None:
        backoff = 0.2
        while True:
            pull = PullLoop(self.nc, stream_name(subscription.producer), subscription.durable,
                            batch=self.batch_size, expires=self.pull_expires,
                            heartbeat=self.heartbeat)
            try:
                await self._ensure_consumer(subscription)
                await pull.start()
                backoff = 0.2
                while True:
                    raise_if_cancelled()
                    messages = await pull.next_batch()
                    if messages:
                        await self._handle_batch(subscription, messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a stall, NATS down, JetStream not ready yet
                raise_if_cancelled()
                log.warning("consumer_resubscribing", consumer=subscription.durable,
                            error=repr(exc), backoff=backoff)
                self.resubscriptions += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pull.close()

    async def _handle_batch(self, subscription: Subscription, messages: list[Msg]) -> None:
        """Apply a pulled batch in one transaction, then ack or retry each message."""
        events: list[tuple[Msg, Event]] = []
        for message in messages:
            try:
                events.append((message, decode_envelope(message.subject, message.data)))
            except UndecodableEvent as exc:
                await self._dead_letter(subscription, message, f"undecodable: {exc}")
        if not events:
            return
        outcomes = await self._apply_batch(subscription, events)
        for (message, event), outcome in zip(events, outcomes, strict=True):
            await self._settle(subscription, message, event, outcome)

    async def _apply_batch(self, subscription: Subscription,
                           events: list[tuple[Msg, Event]]) -> list[str | Exception]:
        """A batch in one transaction (one commit per batch instead of one per event).
        First without savepoints, the common case; if an event fails, that transaction
        rolls back and the batch is applied again with each event's inbox row and effect
        in its own savepoint, so the failing event rolls back alone and the others
        commit together. Returns "applied", "duplicate" or the error, per event."""
        outcomes = await self._apply_in_one_transaction(subscription, events, savepoints=False)
        if len(events) > 1 and any(isinstance(outcome, Exception) for outcome in outcomes):
            outcomes = await self._apply_in_one_transaction(subscription, events,
                                                            savepoints=True)
        return outcomes

    async def _apply_in_one_transaction(self, subscription: Subscription,
                                        events: list[tuple[Msg, Event]], *,
                                        savepoints: bool) -> list[str | Exception]:
        """Without savepoints the first failure ends the attempt: nothing is committed,
        and every event of it is answered with that error."""
        outcomes: list[str | Exception] = []
        try:
            async with self.db.transaction(write=True) as session:
                for message, event in events:
                    with _event_context(subscription, message, event):
                        outcome = await self._apply_one(session, subscription, event,
                                                        savepoint=savepoints)
                    outcomes.append(outcome)
                    if isinstance(outcome, Exception) and not savepoints:
                        return [outcome] * len(events)
                if "applied" in outcomes:
                    await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the commit failed: nothing of the batch took effect
            outcomes = [exc if outcome == "applied" else outcome for outcome in outcomes]
            outcomes += [exc] * (len(events) - len(outcomes))
        return outcomes

    async def _apply_one(self, session: AsyncSession, subscription: Subscription,
                         event: Event, *, savepoint: bool = True) -> str | Exception:
        try:
            async with session.begin_nested() if savepoint else contextlib.nullcontext():
                if not await self._first_delivery(session, subscription, event):
                    return "duplicate"
                await subscription.handler(self.deps, session, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return exc
        return "applied"

    async def _first_delivery(self, session: AsyncSession, subscription: Subscription,
                              event: Event) -> bool:
        """Record the event in the inbox; False when it is there already (a repeat)."""
        recorded = await session.execute(self._record_delivery, dict(
            consumer=subscription.durable, event_id=event.event_id, subject=event.subject,
            processed_at=datetime.now(UTC)))
        return recorded.rowcount == 1

    async def _settle(self, subscription: Subscription, message: Msg, event: Event,
                      outcome: str | Exception) -> None:
        if isinstance(outcome, str):
            EVENTS_HANDLED.labels(subscription.durable, outcome).inc()
            await message.ack()
            return
        deliveries = message.metadata.num_delivered
        if deliveries >= self.max_deliveries:
            await self._dead_letter(subscription, message, repr(outcome), event.event_id)
            return
        EVENTS_HANDLED.labels(subscription.durable, "retry").inc()
        log.warning("event_handler_failed", consumer=subscription.durable,
                    event_id=event.event_id, deliveries=deliveries, error=repr(outcome))
        await message.nak(delay=self.retry_base_delay * 2 ** (deliveries - 1))

    async def _dead_letter(
        self, subscription: Subscription, message: Msg, reason: str, event_id: str = ""
    ) -> None:
        sequence = message.metadata.sequence.stream
        headers = {
            "Nats-Msg-Id": f"{subscription.durable}:{sequence}",
            "Qudao-Consumer": subscription.durable,
            "Qudao-Original-Subject": message.subject,
            "Qudao-Original-Stream": stream_name(subscription.producer),
            "Qudao-Original-Sequence": str(sequence),
            "Qudao-Event-Id": event_id,
            "Qudao-Deliveries": str(message.metadata.num_delivered),
            "Qudao-Error": reason[:1000],
        }
        await self.js.publish(dead_letter_subject(subscription.durable), message.data,
                              headers=headers)
        log.error("event_dead_lettered", consumer=subscription.durable, event_id=event_id,
                  subject=message.subject, error=reason)
        EVENTS_HANDLED.labels(subscription.durable, "dead_lettered").inc()
        await message.term()
