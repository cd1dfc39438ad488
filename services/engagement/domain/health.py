"""Dealer health: what the events say about a dealer (last login, order and
sell-through upload, open registrations, unconfirmed statements) judged by the rules HQ
sets. Computed from facts the service keeps, at the moment asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.errors import FieldViolation, collect

MAX_DAYS = 3660


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    AT_RISK = "at_risk"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class HealthPolicy:
    """0 turns a check off."""

    max_days_without_order: int = 30
    require_flow_for_last_closed_month: bool = True
    # The last closed month's sell-through is due by this day of the next month.
    flow_upload_grace_days: int = 10
    max_days_without_login: int = 30
    statement_confirm_days: int = 15
    expiring_notice_days: int = 14


def validate_policy(policy: HealthPolicy) -> None:
    problems = []
    for name in ("max_days_without_order", "max_days_without_login",
                 "statement_confirm_days", "expiring_notice_days"):
        value = getattr(policy, name)
        if not 0 <= value <= MAX_DAYS:
            problems.append(FieldViolation(f"policy.{name}", f"must be between 0 and {MAX_DAYS}"))
    if not 0 <= policy.flow_upload_grace_days <= 28:
        problems.append(FieldViolation("policy.flow_upload_grace_days",
                                       "must be between 0 and 28"))
    collect(problems)


@dataclass(frozen=True)
class DealerFacts:
    dealer_id: str
    name: str = ""
    region_code: str = ""
    created_at: datetime | None = None
    manager_user_ids: tuple[str, ...] = ()
    last_login_at: datetime | None = None
    last_order_at: datetime | None = None
    last_flow_upload_at: datetime | None = None
    flow_covered_until: date | None = None
    open_registrations: int = 0
    # When each statement still unconfirmed was issued.
    unconfirmed_statements: tuple[datetime, ...] = ()
    # The status last flagged to the managers (a change to worse is flagged once).
    flagged: HealthStatus = HealthStatus.HEALTHY


@dataclass(frozen=True)
class Health:
    facts: DealerFacts
    status: HealthStatus
    risk_score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)
    overdue_statements: int = 0


def last_closed_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _days_since(moment: datetime | None, reference: datetime | None,
                now: datetime) -> int | None:
    since = moment or reference
    return None if since is None else (now - since).days


def evaluate(facts: DealerFacts, policy: HealthPolicy, now: datetime) -> Health:
    """The dealer's status, a risk score (higher is worse) and the reasons in words. A
    new dealer is judged from its creation, not from the epoch."""
    reasons: list[str] = []
    score = 0
    order_failing = login_failing = False
    if policy.max_days_without_order:
        days = _days_since(facts.last_order_at, facts.created_at, now)
        if days is not None and days > policy.max_days_without_order:
            order_failing = True
            score += 3
            reasons.append(f"no order in {days} days" if facts.last_order_at
                           else f"no order since it joined {days} days ago")
    if policy.max_days_without_login:
        days = _days_since(facts.last_login_at, facts.created_at, now)
        if days is not None and days > policy.max_days_without_login:
            login_failing = True
            score += 1
            reasons.append(f"no login in {days} days" if facts.last_login_at
                           else f"no login since it joined {days} days ago")
    if policy.require_flow_for_last_closed_month:
        start, end = last_closed_month(now.date())
        due = now.date() > end + timedelta(days=policy.flow_upload_grace_days)
        joined_before = facts.created_at is None or facts.created_at.date() <= end
        if due and joined_before and (facts.flow_covered_until is None
                                      or facts.flow_covered_until < end):
            score += 2
            reasons.append(f"no sell-through upload for {start:%Y-%m}")
    overdue = 0
    if policy.statement_confirm_days:
        limit = timedelta(days=policy.statement_confirm_days)
        overdue = sum(1 for issued in facts.unconfirmed_statements if now - issued > limit)
        if overdue:
            score += overdue
            reasons.append(f"{overdue} statement(s) unconfirmed after "
                           f"{policy.statement_confirm_days} days")
    if order_failing and (login_failing or facts.last_login_at is None):
        status = HealthStatus.INACTIVE
    elif reasons:
        status = HealthStatus.AT_RISK
    else:
        status = HealthStatus.HEALTHY
    return Health(facts, status, score, tuple(reasons), overdue)


def needs_flag(health: Health) -> bool:
    """Flag the managers when a dealer gets worse than what they were last told."""
    rank = {HealthStatus.HEALTHY: 0, HealthStatus.AT_RISK: 1, HealthStatus.INACTIVE: 2}
    return rank[health.status] > rank[health.facts.flagged]


def riskiest_first(healths: list[Health]) -> list[Health]:
    rank = {HealthStatus.INACTIVE: 0, HealthStatus.AT_RISK: 1, HealthStatus.HEALTHY: 2}
    return sorted(healths, key=lambda h: (rank[h.status], -h.risk_score, h.facts.name,
                                          h.facts.dealer_id))
