"""Accruals: what a dealer has earned, as an append-only ledger. Every accrual unit (a
flow upload part, an order, a return, a dealer's period in a rebate program) has a
target — a pure function of the stored facts — and the ledger holds, per line, exactly
that target: applying an event recomputes the units it touches and books only the
difference. A repeated or reordered event books nothing new, and a full recomputation
equals the incremental result by construction. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime

from shared.money import Money


class AccrualKind(enum.StrEnum):
    COMMISSION = "commission"
    REBATE = "rebate"
    # A negative settlement total carried into the next settlement.
    CARRIED_FORWARD = "carried_forward"


class UnitType(enum.StrEnum):
    FLOW = "flow_upload"        # unit id: "<upload id>#<part index>"
    ORDER = "order"
    RETURN = "return"
    REBATE = "rebate_program"   # unit id: "<program id>:<dealer id>:<period start>"
    SETTLEMENT = "settlement"


@dataclass(frozen=True, order=True)
class LineKey:
    """One line of the ledger: amounts on the same key add up."""

    kind: AccrualKind
    dealer_id: str
    selling_company: str
    period_start: date
    period_end: date
    unit_type: UnitType
    unit_id: str
    scheme_id: str = ""        # commission rule or rebate program
    scheme_version: int = 0
    customer_source: str = ""
    product_line: str = ""
    tier: int = 0
    rate_bps: int = 0
    currency: str = "CNY"


@dataclass(frozen=True)
class Amounts:
    base_minor: int = 0
    quantity: int = 0
    amount_minor: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.base_minor + other.base_minor, self.quantity + other.quantity,
                       self.amount_minor + other.amount_minor)

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.base_minor - other.base_minor, self.quantity - other.quantity,
                       self.amount_minor - other.amount_minor)

    @property
    def is_zero(self) -> bool:
        return not (self.base_minor or self.quantity or self.amount_minor)


Lines = dict[LineKey, Amounts]


def add_to(lines: Lines, key: LineKey, amounts: Amounts) -> None:
    lines[key] = lines.get(key, Amounts()) + amounts


def differences(target: Lines, booked: Lines) -> Lines:
    """What to book so that the ledger holds exactly ``target``."""
    delta: Lines = {}
    for key in sorted(set(target) | set(booked)):
        change = target.get(key, Amounts()) - booked.get(key, Amounts())
        if not change.is_zero:
            delta[key] = change
    return delta


def without_zeros(lines: Lines) -> Lines:
    return {key: value for key, value in lines.items() if not value.is_zero}


@dataclass(frozen=True)
class Accrual:
    """One ledger entry (a difference booked for one line)."""

    id: str
    key: LineKey
    amounts: Amounts
    # Why it was booked: the event (or action) and what it was about.
    cause: str
    cause_id: str
    recorded_at: datetime
    settlement_id: str = ""
    adjustment: bool = False

    @property
    def dealer_id(self) -> str:
        return self.key.dealer_id

    @property
    def kind(self) -> AccrualKind:
        return self.key.kind

    @property
    def amount(self) -> Money:
        return Money(self.amounts.amount_minor, self.key.currency)

    @property
    def base(self) -> Money:
        return Money(self.amounts.base_minor, self.key.currency)

    @property
    def source_type(self) -> str:
        return self.key.unit_type.value

    @property
    def source_id(self) -> str:
        return self.key.unit_id

    def frozen_into(self, settlement_id: str, adjustment: bool) -> Accrual:
        return replace(self, settlement_id=settlement_id, adjustment=adjustment)


@dataclass(frozen=True)
class AccrualFilter:
    """Which accruals a list shows; the dealer ids come from the viewer's scope."""

    dealer_ids: frozenset[str] | None = None  # None: every dealer
    source_id: str = ""
    kind: AccrualKind | None = None
    scheme_id: str = ""
    settlement_id: str = ""
    period_start: date | None = None
    period_end: date | None = None
    recorded_after: datetime | None = None
    recorded_before: datetime | None = None

    def matches(self, accrual: Accrual) -> bool:
        key = accrual.key
        return ((self.dealer_ids is None or key.dealer_id in self.dealer_ids)
                and (not self.source_id or self.source_id in (key.unit_id, _upload_of(key)))
                and (self.kind is None or key.kind is self.kind)
                and (not self.scheme_id or key.scheme_id == self.scheme_id)
                and (not self.settlement_id or accrual.settlement_id == self.settlement_id)
                and (self.period_start is None or key.period_start >= self.period_start)
                and (self.period_end is None or key.period_end <= self.period_end)
                and (self.recorded_after is None or accrual.recorded_at >= self.recorded_after)
                and (self.recorded_before is None
                     or accrual.recorded_at < self.recorded_before))


def _upload_of(key: LineKey) -> str:
    return key.unit_id.split("#", 1)[0] if key.unit_type is UnitType.FLOW else ""


def flow_unit(upload_id: str, part_index: int) -> str:
    return f"{upload_id}#{part_index}"


def rebate_unit(program_id: str, dealer_id: str, period_start: date) -> str:
    return f"{program_id}:{dealer_id}:{period_start.isoformat()}"
