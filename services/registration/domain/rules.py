"""Registration rules: states and their transitions, the protection period, pipeline
stages, customer input validation, lead auto-assignment and auto-approval. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from stdnum.cn import uscc

from shared import divisions
from shared.errors import FieldViolation

DEFAULT_STAGES = ("initial_contact", "needs_confirmed", "quotation", "contract_signed")
STAGE_LABELS = {"initial_contact": "初步接触", "needs_confirmed": "需求确认",
                "quotation": "报价协商", "contract_signed": "合同签订"}


class Status(enum.StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECALLED = "recalled"
    EXPIRED = "expired"


# A registration in one of these holds the customer × product line slot.
ACTIVE = frozenset({Status.SUBMITTED, Status.UNDER_REVIEW, Status.APPROVED})
PENDING = frozenset({Status.SUBMITTED, Status.UNDER_REVIEW})


class LeadStatus(enum.StrEnum):
    POOL = "pool"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    CLOSED = "closed"


class AuthStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


def active_key(customer_id: str, product_line: str) -> str:
    """The value of the unique column that lets one active claim exist per slot."""
    return f"{customer_id}|{product_line}"


@dataclass(frozen=True)
class Policy:
    """The configurable rules (QUDAO_REGISTRATION_OPTION_*)."""

    protection_days: float = 90
    expiring_within_days: int = 14
    fuzzy_threshold_bps: int = 8500
    # "never" | "clean": approve automatically when inside territory and the duplicate
    # check found nothing but (at most) the same customer with no other claim.
    auto_approve: str = "never"
    stages: tuple[str, ...] = DEFAULT_STAGES
    lead_claim_hours: float = 72
    scheduler_interval_seconds: float = 30.0

    def protected_until(self, start: datetime) -> datetime:
        return start + timedelta(days=self.protection_days)

    def renewed_until(self, current: datetime | None, now: datetime) -> datetime:
        base = max(current, now) if current else now
        return max(base, now + timedelta(days=self.protection_days))

    def stage_index(self, stage: str) -> int:
        try:
            return self.stages.index(stage)
        except ValueError:
            return -1


def can_auto_approve(policy: Policy, *, clean: bool) -> bool:
    return policy.auto_approve == "clean" and clean


def credit_code_violations(code: str, field_name: str) -> list[FieldViolation]:
    if code and not uscc.is_valid(code):
        return [FieldViolation(field_name, f"{code!r} is not a valid unified social credit code "
                                           "(统一社会信用代码: 18 characters with a check digit)")]
    return []


def clean_credit_code(code: str) -> str:
    return (code or "").strip().upper().replace(" ", "").replace("-", "")


def parse_day(value: str, field_name: str, violations: list[FieldViolation]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        violations.append(FieldViolation(field_name, f"{value!r} is not a date (YYYY-MM-DD)"))
        return None


@dataclass(frozen=True)
class DealerView:
    """What registration knows about a dealer (projected from identity)."""

    id: str
    name: str
    tier: int  # identity's DealerTier number: platform 1, tier one 2, tier two 3
    division_codes: tuple[str, ...]
    product_lines: tuple[str, ...]
    region_code: str = ""
    active: bool = True
    managers: dict[str, str] = field(default_factory=dict)  # product line → manager id
    # When the lead pool last gave this dealer a lead (round-robin among equals).
    last_lead_assigned_at: datetime | None = None

    def covers(self, division_code: str) -> bool:
        return divisions.in_territory(self.division_codes, division_code)


def territory_violation(dealer: DealerView, division_code: str,
                        product_line: str) -> FieldViolation | None:
    if product_line not in dealer.product_lines:
        return FieldViolation("product_line", f"dealer {dealer.name} does not carry product line "
                                              f"{product_line!r} (carries "
                                              f"{', '.join(dealer.product_lines) or 'none'})")
    if not dealer.covers(division_code):
        return FieldViolation("division_code", f"customer division {division_code} is outside "
                                               f"the territory of dealer {dealer.name} "
                                               f"({', '.join(dealer.division_codes) or 'none'})")
    return None


@dataclass(frozen=True)
class LeadCandidate:
    dealer_id: str
    tier: int
    open_leads: int
    last_assigned_at: datetime | None


def pick_dealer(candidates: list[LeadCandidate]) -> str | None:
    """The lead auto-assignment rule: the lowest tier number first (platform, then tier
    one, then tier two), then the least loaded (fewest leads assigned and not yet
    claimed), then round-robin (the one whose last assignment is oldest, never-assigned
    first), then the dealer id for a stable answer."""
    if not candidates:
        return None
    epoch = datetime.min

    def key(c: LeadCandidate):
        last = c.last_assigned_at.replace(tzinfo=None) if c.last_assigned_at else epoch
        return (c.tier or 99, c.open_leads, last, c.dealer_id)

    return min(candidates, key=key).dealer_id
