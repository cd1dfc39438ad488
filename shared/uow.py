"""The unit of work every use case writes through: one database transaction, the
service's repositories bound to it, and the events it records, which go into the outbox
in the same transaction at commit. Nothing is kept unless the use case commits.

    async with uow:                          # a write transaction
        order = await uow.orders.get(order_id)
        ...
        uow.events.record(ORDER_APPROVED, payload, order.id)
        await uow.commit()
    async with uow.read():                   # a read-only snapshot
        ...

A service's adapters subclass ``UnitOfWork`` and bind their repositories in ``bind``;
its use cases depend only on the protocol they declare, so a service-layer test can
pass an in-memory fake (``shared.testing.FakeUnitOfWork``).

A consumer's handler runs inside the transaction that also records the event in the
inbox; ``UnitOfWork(db, outbox, joined=session)`` works in a savepoint of that
transaction instead of a transaction of its own: its commit releases the savepoint
(the consumer commits the whole batch), leaving without commit rolls the savepoint
back."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator
from typing import Self

from google.protobuf.message import Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus.outbox import Outbox
from shared.db import Database
from shared.events.catalog import EventType, P


class EventLog:
    """Events a use case records; the unit of work writes them into the outbox (in the
    same transaction) when it commits."""

    def __init__(self, writable: bool = True) -> None:
        self.pending: list[tuple[EventType, Message, str]] = []
        self.writable = writable

    def record(self, event_type: EventType[P], payload: P, aggregate_id: str) -> None:
        if not self.writable:
            raise RuntimeError(f"{event_type.subject} recorded in a read-only transaction")
        self.pending.append((event_type, payload, aggregate_id))


class UnitOfWork:
    def __init__(self, db: Database, outbox: Outbox, *,
                 joined: AsyncSession | None = None) -> None:
        self.db = db
        self.outbox = outbox
        self.session: AsyncSession | None = None
        self.events = EventLog()
        self._joined = joined
        self._savepoint = None
        self._stack: contextlib.AsyncExitStack | None = None

    def bind(self, session: AsyncSession) -> None:
        """Create the service's repositories on ``session`` (subclasses)."""

    async def _open(self, *, write: bool) -> Self:
        if self._stack is not None:
            raise RuntimeError("a unit of work is entered once at a time")
        self._stack = contextlib.AsyncExitStack()
        if self._joined is not None:
            self.session = self._joined
            self._savepoint = await self.session.begin_nested()
            self._stack.push_async_callback(self._end_savepoint)
        else:
            self.session = await self._stack.enter_async_context(
                self.db.transaction(write=write))
        self.events = EventLog(writable=write)
        self.bind(self.session)
        return self

    async def _close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        return await self._open(write=True)

    async def __aexit__(self, *_exc) -> None:
        await self._close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Self]:
        await self._open(write=False)
        try:
            yield self
        finally:
            await self._close()

    async def exclusive(self, name: str) -> bool:
        """Whether this write transaction is, across every replica, the only one doing
        ``name`` (a sweep each replica runs on a timer); held until it ends. On PostgreSQL
        a transaction advisory lock, taken without waiting; SQLite's writer runs one write
        transaction at a time, so the second sweep starts after the first committed and
        finds nothing left to do."""
        if self.db.is_sqlite:
            return True
        key = zlib.crc32(f"qudao-exclusive:{name}".encode())
        return bool(await self.session.scalar(select(func.pg_try_advisory_xact_lock(key))))

    async def flush(self) -> None:
        """Write pending changes (not the events) without committing, e.g. before a
        query that must see them or to surface a constraint violation early."""
        await self.session.flush()

    async def write_events(self) -> None:
        """Write the events recorded so far into the outbox now, in this transaction: a
        bulk use case calls it between parts, so that its commit has not 100,000
        envelopes to build in one go while the event loop waits."""
        pending, self.events.pending = self.events.pending, []
        await self.outbox.record_all(self.session, pending)

    async def commit(self) -> None:
        await self.write_events()
        if self._savepoint is not None:
            await self._savepoint.commit()
        else:
            await self.session.commit()

    async def rollback(self) -> None:
        self.events.pending.clear()
        if self._savepoint is not None:
            await self._savepoint.rollback()
        else:
            await self.session.rollback()

    async def _end_savepoint(self) -> None:
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None and savepoint.is_active:
            await savepoint.rollback()
