"""Business periods: months, quarters and years, written "2026-03", "2026-Q1" and "2026".
Business days are dates in UTC, like the rest of the suite. Pure Python."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta

from shared.errors import InvalidArgument


class PeriodKind(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MONTHS_IN = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}
_FORMS = (
    (re.compile(r"^(\d{4})-(\d{2})$"), PeriodKind.MONTH),
    (re.compile(r"^(\d{4})-[Qq]([1-4])$"), PeriodKind.QUARTER),
    (re.compile(r"^(\d{4})$"), PeriodKind.YEAR),
)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument.field(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # inclusive
    kind: PeriodKind

    @classmethod
    def parse(cls, text: str, field: str = "period") -> Period:
        text = text.strip()
        for pattern, kind in _FORMS:
            match = pattern.match(text)
            if not match:
                continue
            year = int(match.group(1))
            if kind is PeriodKind.YEAR:
                return cls.of(kind, date(year, 1, 1))
            number = int(match.group(2))
            month = number if kind is PeriodKind.MONTH else (number - 1) * 3 + 1
            if not 1 <= month <= 12 or year < 2000:
                break
            return cls.of(kind, date(year, month, 1))
        raise InvalidArgument.field(field, f"{text!r} is not a period: write 2026-03 (month), "
                                           "2026-Q1 (quarter) or 2026 (year)")

    @classmethod
    def of(cls, kind: PeriodKind, day: date) -> Period:
        """The period of this kind that contains ``day``."""
        size = MONTHS_IN[kind]
        first_month = (day.month - 1) // size * size + 1
        start = date(day.year, first_month, 1)
        return cls(start, _add_months(start, size) - timedelta(days=1), kind)

    @classmethod
    def between(cls, start: date, end: date) -> Period:
        """The month, quarter or year spanning exactly start..end."""
        for kind in PeriodKind:
            period = cls.of(kind, start)
            if period.start == start and period.end == end:
                return period
        raise InvalidArgument.field("period_start", f"{start}..{end} is not a month, quarter "
                                                    "or year")

    @property
    def label(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return month_of(self.start)
        if self.kind is PeriodKind.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    def months(self) -> list[str]:
        return [month_of(_add_months(self.start, i)) for i in range(MONTHS_IN[self.kind])]

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def next(self) -> Period:
        return Period.of(self.kind, self.end + timedelta(days=1))

    def __str__(self) -> str:
        return self.label


def months_between(start: date, end: date) -> list[str]:
    """Every month touched by start..end, in order."""
    months, day = [], date(start.year, start.month, 1)
    while day <= end:
        months.append(month_of(day))
        day = _add_months(day, 1)
    return months


def instances(kind: PeriodKind, start: date, end: date) -> list[Period]:
    """The periods of ``kind`` that overlap start..end."""
    found, period = [], Period.of(kind, start)
    while period.start <= end:
        found.append(period)
        period = period.next()
    return found
