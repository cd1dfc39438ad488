"""Time as a collaborator: use cases ask a clock instead of calling ``datetime.now``, so
a test can stand still or move time forward. Times are timezone-aware UTC; business
days are dates in UTC, "YYYY-MM-DD"."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def today(clock: Clock) -> date:
    return clock.now().date()


def aware(moment: datetime) -> datetime:
    """A datetime read back from SQLite has lost its zone; it was stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
