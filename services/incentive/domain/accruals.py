"""Accruals: what a dealer has earned, booked once per source. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from shared.money import Money


class AccrualKind(enum.StrEnum):
    COMMISSION = "commission"
    REBATE = "rebate"


@dataclass(frozen=True)
class Accrual:
    id: str
    dealer_id: str
    kind: AccrualKind
    # What it was computed from, e.g. ("order", order id).
    source_type: str
    source_id: str
    source_event_id: str
    base: Money
    rate_bps: int
    amount: Money
    recorded_at: datetime


@dataclass(frozen=True)
class AccrualFilter:
    """Which accruals a list shows; the dealer ids come from the viewer's scope."""

    dealer_ids: frozenset[str] | None = None  # None: every dealer
    source_id: str = ""
