"""Settlement: closing a period freezes the accruals that are due into one statement per
dealer — lines by program, tier and customer source, and adjustments for periods closed
earlier — which finance then approves; approved statements are credited to the dealers'
accounts. A period is closed once and a settled statement never changes. Pure Python."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from services.incentive.domain.accruals import Accrual, AccrualKind
from services.incentive.domain.periods import Period, months_between

MAX_SOURCES = 50


class SettlementStatus(enum.StrEnum):
    CLOSED = "closed"     # frozen, awaiting approval
    SETTLED = "settled"   # approved and credited


class LineKind(enum.StrEnum):
    REBATE = "rebate"
    COMMISSION = "commission"
    ADJUSTMENT = "adjustment"
    CARRIED_FORWARD = "carried_forward"


@dataclass(frozen=True)
class SettlementPeriod:
    id: str
    selling_company: str
    period: Period
    status: SettlementStatus
    dealer_count: int
    total_minor: int
    currency: str
    closed_at: datetime
    closed_by: str
    settled_at: datetime | None = None
    settled_by: str = ""


@dataclass(frozen=True)
class StatementLine:
    kind: LineKind
    scheme_id: str
    scheme_version: int
    tier: int
    customer_source: str
    product_line: str
    rate_bps: int
    period_start: date
    period_end: date
    base_minor: int
    quantity: int
    amount_minor: int
    accrual_count: int
    sources: tuple[str, ...] = ()
    scheme_name: str = ""


@dataclass(frozen=True)
class Settlement:
    id: str
    period_id: str
    dealer_id: str
    selling_company: str
    period: Period
    status: SettlementStatus
    lines: tuple[StatementLine, ...]
    total_minor: int
    currency: str
    closed_at: datetime
    settled_at: datetime | None = None
    credit_id: str = ""
    carried_forward_minor: int = 0


def settlement_id(period_id: str, dealer_id: str) -> str:
    """A dealer's statement in a settlement period (also the credit's idempotency key)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qudao:settlement/{period_id}/{dealer_id}"))


def is_due(period_start: date, period_end: date, closed_months: set[str]) -> bool:
    """Accruals are settled once every month of their business period is closed."""
    return all(month in closed_months for month in months_between(period_start, period_end))


def classify(period_start: date, period_end: date, closing: Period,
             closed_before: set[str]) -> str | None:
    """For an unfrozen accrual at a close: "regular" when this close makes it due,
    "adjustment" when its period was closed before (late data), None while not due."""
    months = set(months_between(period_start, period_end))
    if months <= closed_before:
        return "adjustment"
    if months <= closed_before | set(closing.months()):
        return "regular"
    return None


def _line_kind(accrual: Accrual) -> LineKind:
    if accrual.key.kind is AccrualKind.CARRIED_FORWARD:
        return LineKind.CARRIED_FORWARD
    if accrual.adjustment:
        return LineKind.ADJUSTMENT
    return LineKind.REBATE if accrual.key.kind is AccrualKind.REBATE else LineKind.COMMISSION


@dataclass
class _Sum:
    base: int = 0
    quantity: int = 0
    amount: int = 0
    count: int = 0
    sources: list[str] = field(default_factory=list)


def statement_lines(accruals: list[Accrual], names: dict[str, str] | None = None,
                    rebate_sources: dict[tuple[str, date], tuple[str, ...]] | None = None
                    ) -> list[StatementLine]:
    """Accruals grouped into statement lines; lines that net to nothing are left out.
    An adjustment keeps the period it corrects. A line lists where it came from: the
    flow upload parts, orders and returns of a commission; for a rebate, those its
    volume counts (``rebate_sources`` by program and period start), else the events
    that moved it — which is also what an adjustment lists."""
    names = names or {}
    rebate_sources = rebate_sources or {}
    sums: dict[tuple, _Sum] = {}
    for accrual in accruals:
        key = accrual.key
        kind = _line_kind(accrual)
        group = (kind, key.kind.value, key.scheme_id, key.scheme_version, key.tier,
                 key.customer_source, key.product_line,
                 key.rate_bps if key.kind is AccrualKind.COMMISSION else 0,
                 key.period_start, key.period_end)
        total = sums.setdefault(group, _Sum())
        total.base += accrual.amounts.base_minor
        total.quantity += accrual.amounts.quantity
        total.amount += accrual.amounts.amount_minor
        total.count += 1
        source = f"{key.unit_type.value}:{key.unit_id}"
        if key.kind is not AccrualKind.REBATE and source not in total.sources:
            total.sources.append(source)
        elif key.kind is AccrualKind.REBATE and accrual.cause_id not in total.sources:
            total.sources.append(accrual.cause_id)
    merged: dict[tuple, StatementLine] = {}
    for group, total in sums.items():
        kind, _, scheme, version, tier, source, line, rate, start, end = group
        if not (total.base or total.quantity or total.amount):
            continue
        if kind is LineKind.REBATE and (scheme, start) in rebate_sources:
            total.sources = list(rebate_sources[(scheme, start)])
        merged[group] = StatementLine(
            kind, scheme, version, tier, source, line,
            rate or (_effective_rate(total.amount, total.base) if kind is LineKind.REBATE
                     else 0),
            start, end, total.base, total.quantity, total.amount, total.count,
            tuple(s for s in total.sources if s)[:MAX_SOURCES], names.get(scheme, ""))
    return sorted(merged.values(), key=lambda ln: (list(LineKind).index(ln.kind), ln.period_start,
                                                  ln.scheme_id, ln.tier, ln.customer_source,
                                                  ln.product_line, ln.rate_bps))


def _effective_rate(amount: int, base: int) -> int:
    return amount * 10_000 // base if base > 0 else 0


def total_of(lines: list[StatementLine]) -> int:
    return sum(line.amount_minor for line in lines)
