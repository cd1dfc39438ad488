"""The transactional outbox: an event row is written in the same database transaction as
the state change it describes, and a relay publishes unsent rows to JetStream with
``Nats-Msg-Id`` = event id, then marks them sent. A crash between commit and publish
loses nothing; a repeat publish is dropped by JetStream's duplicate window and, past it,
by the consumers' inbox.

Several replicas of a service run a relay each on one database; a row is published by
one of them only. On PostgreSQL the relay takes its batch inside a transaction that holds
the outbox's advisory lock (``pg_try_advisory_xact_lock``: one relay at a time, so the
stream keeps commit order) and locks the rows with ``FOR UPDATE SKIP LOCKED``; the
transaction stays open until the acks are in and the rows are marked sent, so a relay
that dies mid-batch releases its claim with its connection. On SQLite (one process per
database file in the embedded default) relays on the same file take turns on an
exclusive ``flock`` of a lock file beside it.

On SQLite the relay never waits in the process's writer queue before publishing: rows
are numbered in commit order (one writer at a time), so it reads on from the last row it
published, and marks what JetStream acknowledged in the background, one UPDATE for all
rows published meanwhile. It keeps its claim while it has work and gives it up after a
poll interval with nothing to do and every row it sent marked, so another relay on the
file never publishes a row this one has sent and not yet marked."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
import zlib
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import Counter, Gauge
from qudao.common.v1 import envelope_pb2
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from shared import tracing
from shared.bus.envelope import build_envelope
from shared.cancellation import raise_if_cancelled
from shared.db import Database
from shared.events.catalog import EventType, P
from shared.logging import get_logger

log = get_logger(__name__)

EVENTS_PUBLISHED = Counter(
    "qudao_outbox_events_published_total", "Events published by the outbox relay", ["producer"]
)
OUTBOX_LAG = Gauge(
    "qudao_outbox_oldest_unpublished_seconds",
    "Age of the oldest event not yet published",
    ["producer"],
)
OUTBOX_BACKLOG = Gauge(
    "qudao_outbox_unpublished_events",
    "Events committed to the outbox and not yet acknowledged by JetStream",
    ["producer"],
)
# A relay holding its claim longer than this (stuck, or cut off from NATS with its
# transaction open) loses it: PostgreSQL ends the idle transaction and its locks.
CLAIM_IDLE_TIMEOUT_MS = 30_000
BACKLOG_REFRESH_SECONDS = 10.0

_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def bus_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the ``outbox`` and ``inbox`` tables to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("position", _BigIntId, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index(
            "ix_outbox_unpublished",
            "position",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_published_at", "published_at"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    return outbox, inbox


class Outbox:
    """Records events into a service's outbox table and wakes its relay after commit."""

    def __init__(self, table: Table, producer: str) -> None:
        self.table = table
        self.producer = producer
        self._insert = insert(table)
        self._wakeup = asyncio.Event()

    def _check(self, event_type: EventType[P], payload: P) -> None:
        if event_type.producer != self.producer:
            raise ValueError(f"{self.producer} cannot publish {event_type.subject}: each "
                             f"service publishes only its own events")
        if type(payload) is not event_type.payload:
            raise TypeError(f"{event_type.subject} carries {event_type.name}, "
                            f"not {type(payload).__name__}")

    async def record(self, session: AsyncSession, event_type: EventType[P], payload: P,
                     aggregate_id: str) -> str:
        """Add an event to the current transaction; return its id."""
        return (await self.record_all(session, [(event_type, payload, aggregate_id)]))[0]

    async def record_many(self, session: AsyncSession, event_type: EventType[P],
                          events: list[tuple[P, str]]) -> list[str]:
        """Add many events of one kind (payload, aggregate id) to the current transaction
        with one executemany."""
        return await self.record_all(
            session, [(event_type, payload, aggregate_id) for payload, aggregate_id in events])

    async def record_all(self, session: AsyncSession,
                         events: list[tuple[EventType, object, str]]) -> list[str]:
        """Add events of any kinds (event type, payload, aggregate id) to the current
        transaction with one executemany."""
        if not events:
            return []
        moment = datetime.now(UTC)
        rows = []
        for event_type, payload, aggregate_id in events:
            self._check(event_type, payload)
            envelope = build_envelope(self.producer, payload, aggregate_id)
            rows.append(dict(event_id=envelope.event_id, subject=event_type.subject,
                             event_type=envelope.event_type, aggregate_id=aggregate_id,
                             envelope=envelope.SerializeToString(), created_at=moment))
        await session.execute(self._insert, rows)
        # Woken by _wake_outboxes once the transaction commits (registering a listener
        # on each session instead cost more than building the events).
        session.sync_session.info.setdefault(_WAKE_AFTER_COMMIT, set()).add(self)
        return [row["event_id"] for row in rows]

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait for a commit that recorded events; False when ``timeout`` passed without."""
        woken = True
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            woken = False
        self._wakeup.clear()
        return woken


_WAKE_AFTER_COMMIT = "qudao_outbox_wake_after_commit"


@event.listens_for(Session, "after_commit")
def _wake_outboxes(session: Session) -> None:
    for outbox in session.info.pop(_WAKE_AFTER_COMMIT, ()):
        outbox._wakeup.set()


@event.listens_for(Session, "after_rollback")
def _forget_outboxes(session: Session) -> None:
    session.info.pop(_WAKE_AFTER_COMMIT, None)


def nats_headers(event_id: str, envelope_bytes: bytes) -> dict[str, str]:
    """``Nats-Msg-Id`` for de-duplication, and the envelope's context for anyone reading
    the stream without decoding payloads (ops tools, tracing). With tracing on, the
    publish is a span in the trace that recorded the event, and ``traceparent`` names
    it for the consumers."""
    envelope = envelope_pb2.EventEnvelope.FromString(envelope_bytes)
    headers = {
        "Nats-Msg-Id": event_id,
        "Qudao-Event-Type": envelope.event_type,
        "Qudao-Request-Id": envelope.request_id,
        "Qudao-Principal": envelope.principal,
        "Qudao-Producer": envelope.producer,
    }
    if tracing.enabled() and envelope.traceparent:
        with tracing.span(f"publish {envelope.event_type}", tracing.SpanKind.PRODUCER,
                          parent=tracing.context_from(None, envelope.traceparent),
                          attributes={"messaging.system": "nats",
                                      "messaging.message.id": event_id}):
            headers[tracing.TRACEPARENT] = tracing.current_traceparent()
    return headers


class OutboxRelay:
    """Publishes unsent outbox rows in batches with ``publish_async`` and waits for the
    acks; only acknowledged rows are marked sent, so a failed batch is retried whole."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        js: JetStreamContext,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        ack_timeout: float = 5.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.retention = retention
        self._last_purge = 0.0
        self._last_backlog = 0.0
        # Rows this relay published (acknowledged by JetStream), for tests and logs.
        self.published = 0
        # On SQLite: the claim file held (None: not held; True: an in-memory database,
        # which belongs to this process alone), the last position published and
        # acknowledged, the last one marked sent, and the task marking those in between.
        self._claim: object | None = None
        self._published_up_to = 0
        self._marked_up_to = 0
        self._marking: asyncio.Task | None = None
        self._purging: asyncio.Task | None = None

    async def run(self) -> None:
        backoff = 0.2
        try:
            while True:
                try:
                    published = await self.publish_pending()
                    await self._housekeeping()
                    if (published < self.batch_size
                            and not await self.outbox.wait_for_work(self.poll_interval)):
                        self.let_go()
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS down, DB busy: keep the rows, try again
                    raise_if_cancelled()
                    # Rows published and not marked go out again (JetStream drops the
                    # repeats within its window, the consumers' inbox after it).
                    self._release()
                    log.warning("outbox_relay_retry", error=str(exc), backoff=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                raise_if_cancelled()
        finally:
            if self._purging is not None:
                self._purging.cancel()
            with contextlib.suppress(Exception):  # stopping: mark what we can, briefly
                await asyncio.wait_for(self._flush_marks(), 2.0)
            self._release()

    async def _housekeeping(self) -> None:
        """Now and then: the backlog gauge, and old published rows deleted (a write that
        waits for its turn behind the use cases', so beside the relay, not in its way)."""
        now = time.monotonic()
        if now - self._last_backlog > BACKLOG_REFRESH_SECONDS:
            self._last_backlog = now
            OUTBOX_BACKLOG.labels(self.outbox.producer).set(await self.pending_count())
        if now - self._last_purge > 3600:
            self._last_purge = now
            # A failure is tried again an hour later.
            self._purging = self._beside(self.purge_published, "purge")

    def _beside(self, operation, what: str) -> asyncio.Task:
        """``operation()`` in a task of its own; a failure is logged, never raised."""
        async def logged() -> None:
            try:
                await operation()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"outbox_{what}_failed", error=str(exc))

        return asyncio.create_task(logged(), name=f"outbox-{what}-{self.outbox.producer}")

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows if this relay gets the claim; return how many
        rows the batch had (0 when there was nothing to do or another relay holds it)."""
        if self.db.is_sqlite:
            if not self._hold_claim():
                return 0
            async with self.db.read() as session:
                rows = await self._unsent(session, lock=False, after=self._published_up_to)
            return await self._publish_rows(rows, None)
        async with self.db.transaction(write=True) as session:
            await session.execute(text(
                f"SET LOCAL idle_in_transaction_session_timeout = {CLAIM_IDLE_TIMEOUT_MS}"))
            claimed = await session.scalar(
                select(func.pg_try_advisory_xact_lock(self._lock_key)))
            if not claimed:
                return 0
            rows = await self._unsent(session, lock=True)
            published = await self._publish_rows(rows, session)
            await session.commit()
            return published

    @property
    def _lock_key(self) -> int:
        """The outbox's advisory lock key: stable across processes and releases."""
        return zlib.crc32(f"qudao-outbox:{self.outbox.table.name}".encode())

    def _hold_claim(self) -> bool:
        """SQLite: hold the file claim (kept until ``let_go``); False when another relay
        on the file holds it."""
        if self._claim is not None:
            return True
        path = _sqlite_path(self.db.url)
        if path is None:
            self._claim = True
            return True
        handle = open(f"{path}.relay-lock", "a+b")  # noqa: SIM115 - held across calls
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._claim = handle
        return True

    def let_go(self) -> None:
        """Idle (SQLite): give up the claim so another relay on the file may take its
        turn, once every acknowledged row is marked sent. Until then the claim is kept
        and the marks go on in the background: the relay itself never waits for them."""
        if self._claim is None:
            return
        if self._marked_up_to < self._published_up_to:
            self._mark_later()
            return
        self._release()

    def _release(self) -> None:
        """Give up the claim and forget how far this relay got: the next claim reads
        every unmarked row again."""
        if self._marking is not None:
            self._marking.cancel()
            self._marking = None
        claim, self._claim = self._claim, None
        if claim is not None and claim is not True:
            fcntl.flock(claim, fcntl.LOCK_UN)
            claim.close()
        self._published_up_to = self._marked_up_to = 0

    def _mark_later(self) -> None:
        if self._marking is None or self._marking.done():
            # A failure is tried again after the next batch, or when going idle.
            self._marking = self._beside(self._mark_published, "marks")

    async def _flush_marks(self) -> None:
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)
        await self._mark_published()

    async def _mark_published(self) -> None:
        """One UPDATE for every row published since the last mark: in commit order, every
        unsent row up to the last published one was in the batches that went out."""
        table = self.outbox.table
        while self._marked_up_to < self._published_up_to:
            low, high = self._marked_up_to, self._published_up_to
            async with self.db.write() as session:
                await session.execute(
                    update(table).where(table.c.position > low, table.c.position <= high,
                                        table.c.published_at.is_(None))
                    .values(published_at=datetime.now(UTC)))
            self._marked_up_to = high

    async def _unsent(self, session: AsyncSession, *, lock: bool, after: int = 0) -> list:
        table = self.outbox.table
        query = (select(table.c.position, table.c.event_id, table.c.subject,
                        table.c.envelope, table.c.created_at)
                 .where(table.c.published_at.is_(None), table.c.position > after)
                 .order_by(table.c.position)
                 .limit(self.batch_size))
        if lock:
            query = query.with_for_update(skip_locked=True)
        return list((await session.execute(query)).all())

    async def _publish_rows(self, rows: list, session: AsyncSession | None) -> int:
        """Publish ``rows`` and mark the acknowledged ones sent: in ``session`` (the
        claim's transaction) when given, else in a write transaction of its own."""
        table = self.outbox.table
        if not rows:
            OUTBOX_LAG.labels(self.outbox.producer).set(0)
            return 0
        oldest = rows[0].created_at
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        OUTBOX_LAG.labels(self.outbox.producer).set(
            (datetime.now(UTC) - oldest).total_seconds()
        )
        futures = []
        try:
            for row in rows:
                futures.append(
                    await self.js.publish_async(row.subject, row.envelope,
                                                headers=nats_headers(row.event_id, row.envelope))
                )
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self.ack_timeout
            )
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        acked = [row.position for row, result in zip(rows, results, strict=True)
                 if isinstance(result, PubAck)]
        if session is None and len(acked) == len(rows):
            self._published_up_to = rows[-1].position
            self._mark_later()
            EVENTS_PUBLISHED.labels(self.outbox.producer).inc(len(acked))
            self.published += len(acked)
        elif acked:
            mark = (update(table).where(table.c.position.in_(acked))
                    .values(published_at=datetime.now(UTC)))
            if session is not None:
                await session.execute(mark)
            else:
                async with self.db.write() as own:
                    await own.execute(mark)
            EVENTS_PUBLISHED.labels(self.outbox.producer).inc(len(acked))
            self.published += len(acked)
        failures = [result for result in results if not isinstance(result, PubAck)]
        if failures:
            if session is not None:
                await session.commit()  # keep what was acknowledged
            raise RuntimeError(f"{len(failures)} of {len(rows)} publishes failed: {failures[0]!r}")
        return len(rows)

    async def purge_published(self) -> None:
        self._last_purge = time.monotonic()
        table = self.outbox.table
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.write() as session:
            await session.execute(delete(table).where(table.c.published_at < cutoff))

    async def pending_count(self) -> int:
        table = self.outbox.table
        async with self.db.read() as session:
            return (
                await session.execute(
                    select(func.count()).select_from(table).where(table.c.published_at.is_(None))
                )
            ).scalar_one()


def _sqlite_path(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else database
