"""In-memory stand-ins for a use case's collaborators, for the service-layer tests: a
clock that stands still until told, predictable ids, a scope resolver with fixed
answers, and the base of every service's fake unit of work (which, like the real one,
keeps nothing unless committed)."""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self

from google.protobuf.message import Message

from shared.context import Principal
from shared.events.catalog import EventType
from shared.scope import NOTHING, Scope
from shared.uow import EventLog


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


class SequentialIds:
    """``<prefix>-1``, ``<prefix>-2``, …"""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self._next = itertools.count(1)

    def new_id(self) -> str:
        return f"{self.prefix}-{next(self._next)}"


@dataclass
class FakeScopes:
    """Answers ResolveScope from a table: (subject, action) or subject → scope."""

    scopes: dict = field(default_factory=dict)

    def allow(self, principal: Principal, dealer_ids=(), *, all_dealers: bool = False,
              action: str = "") -> None:
        key = (principal.subject, action) if action else principal.subject
        self.scopes[key] = Scope(all_dealers=all_dealers, dealer_ids=frozenset(dealer_ids))

    async def resolve(self, principal: Principal, action: str) -> Scope:
        return self.scopes.get((principal.subject, action),
                               self.scopes.get(principal.subject, NOTHING))


@dataclass(frozen=True)
class Published:
    event_type: EventType
    payload: Message
    aggregate_id: str


class FakeUnitOfWork:
    """Base of a service's in-memory unit of work. Subclasses keep their repositories
    as attributes named in ``repositories``; entering saves a copy of them, and leaving
    without ``commit`` puts the copy back, so a failed use case leaves nothing behind.
    Committed events accumulate in ``published``."""

    repositories: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.events = EventLog()
        self.published: list[Published] = []
        self.commits = 0
        self._saved: dict | None = None

    def _open(self, write: bool) -> Self:
        if self._saved is not None:
            raise RuntimeError("a unit of work is entered once at a time")
        self._saved = {name: copy.deepcopy(getattr(self, name)) for name in self.repositories}
        self.events = EventLog(writable=write)
        return self

    def _close(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            for name, state in saved.items():
                setattr(self, name, state)

    async def exclusive(self, name: str) -> bool:
        return True

    async def __aenter__(self) -> Self:
        return self._open(write=True)

    async def __aexit__(self, *_exc) -> None:
        self._close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Self]:
        self._open(write=False)
        try:
            yield self
        finally:
            self._close()

    async def flush(self) -> None:
        return None

    async def write_events(self) -> None:
        # Written events stay in the transaction: kept pending, published at commit.
        return None

    async def commit(self) -> None:
        self.published.extend(Published(*item) for item in self.events.pending)
        self.events.pending = []
        self.commits += 1
        # What is committed stays: leaving the block no longer restores the copy.
        self._saved = {name: getattr(self, name) for name in self.repositories}

    async def rollback(self) -> None:
        self.events.pending = []
        if self._saved is not None:
            for name, state in self._saved.items():
                setattr(self, name, copy.deepcopy(state))

    def published_of(self, event_type: EventType) -> list[Message]:
        return [item.payload for item in self.published if item.event_type is event_type]
