"""Commission rules: commission = base amount x rate, the rate chosen by the customer's
source (registered by the dealer itself, assigned from HQ's lead pool, or neither), the
product line, per-dealer (or customer, or product) overrides and validity dates by the
day of the sale or approval. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.errors import FieldViolation, collect
from shared.money import Money

DEFAULT_COMMISSION_RATE_BPS = 200
MAX_BPS = 10_000


class CustomerSource(enum.StrEnum):
    DEALER_SOURCED = "dealer_sourced"
    HQ_LEAD = "hq_lead"
    # Neither registered by the dealer nor assigned to it.
    UNREGISTERED = "unregistered"


class CommissionBase(enum.StrEnum):
    SELL_THROUGH = "sell_through"
    APPROVED_ORDERS = "approved_orders"


class UnregisteredPolicy(enum.StrEnum):
    BASE_RATE = "base_rate"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Override:
    """Replaces the rate for a narrower case; empty fields match anything. The most
    specific match wins (product > customer > dealer); among equals, the later one."""

    rate_bps: int
    dealer_id: str = ""
    customer_id: str = ""
    product_code: str = ""
    source: CustomerSource | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    reason: str = ""

    def matches(self, sale: SaleContext) -> bool:
        return ((not self.dealer_id or self.dealer_id == sale.dealer_id)
                and (not self.customer_id or self.customer_id == sale.customer_id)
                and (not self.product_code or self.product_code == sale.product_code)
                and (self.source is None or self.source == sale.source)
                and (self.valid_from is None or self.valid_from <= sale.day)
                and (self.valid_to is None or sale.day <= self.valid_to))

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (bool(self.product_code), bool(self.customer_id), bool(self.dealer_id))


@dataclass(frozen=True)
class SaleContext:
    """What decides a rate: who sold what to whom, when, and where the customer came
    from."""

    dealer_id: str
    customer_id: str
    product_code: str
    product_line: str
    day: date
    # None where no customer is involved (approved orders): the base rate applies.
    source: CustomerSource | None


@dataclass(frozen=True)
class CommissionRule:
    id: str = ""
    name: str = ""
    # Empty: every product line (a rule for the line beats it).
    product_line: str = ""
    base: CommissionBase = CommissionBase.SELL_THROUGH
    base_rate_bps: int = DEFAULT_COMMISSION_RATE_BPS
    source_rates: dict[CustomerSource, int] = field(default_factory=dict)
    unregistered: UnregisteredPolicy = UnregisteredPolicy.BASE_RATE
    overrides: tuple[Override, ...] = ()
    valid_from: date = date(2000, 1, 1)
    valid_to: date | None = None
    active: bool = True
    updated_at: datetime | None = None
    updated_by: str = ""

    def __hash__(self) -> int:
        return hash(self.id)

    def valid_on(self, day: date) -> bool:
        return self.active and self.valid_from <= day and (self.valid_to is None
                                                           or day <= self.valid_to)

    def rate_for(self, sale: SaleContext) -> int | None:
        """The rate for this sale in basis points; None when it earns nothing."""
        matching = [(o.specificity, index, o) for index, o in enumerate(self.overrides)
                    if o.matches(sale)]
        if matching:
            return max(matching, key=lambda item: (item[0], item[1]))[2].rate_bps
        if sale.source is None:
            return self.base_rate_bps
        if sale.source is CustomerSource.UNREGISTERED:
            if self.unregistered is UnregisteredPolicy.NOTHING:
                return None
            return self.source_rates.get(CustomerSource.UNREGISTERED, self.base_rate_bps)
        return self.source_rates.get(sale.source, self.base_rate_bps)

    def commission_on(self, base: Money, rate_bps: int | None = None) -> Money:
        return base.at_rate_bps(self.base_rate_bps if rate_bps is None else rate_bps)

    def overlaps(self, other: CommissionRule) -> bool:
        if not (self.active and other.active) or self.id == other.id:
            return False
        if (self.product_line, self.base) != (other.product_line, other.base):
            return False
        end_a = self.valid_to or date.max
        end_b = other.valid_to or date.max
        return self.valid_from <= end_b and other.valid_from <= end_a


def validate_rule(rule: CommissionRule, others: list[CommissionRule]) -> None:
    """Every problem of a rule at once (InvalidArgument naming the fields)."""
    problems: list[FieldViolation] = []

    def rate(path: str, value: int) -> None:
        if not 0 <= value <= MAX_BPS:
            problems.append(FieldViolation(path, f"must be 0..{MAX_BPS} basis points, "
                                                 f"got {value}"))

    if not rule.name.strip():
        problems.append(FieldViolation("rule.name", "is required"))
    rate("rule.base_rate_bps", rule.base_rate_bps)
    for source, value in rule.source_rates.items():
        rate(f"rule.rates[{source.value}].rate_bps", value)
    if rule.valid_to is not None and rule.valid_to < rule.valid_from:
        problems.append(FieldViolation("rule.valid_to", "is before valid_from"))
    for index, override in enumerate(rule.overrides):
        path = f"rule.overrides[{index}]"
        rate(f"{path}.rate_bps", override.rate_bps)
        if not (override.dealer_id or override.customer_id or override.product_code
                or override.source):
            problems.append(FieldViolation(path, "names no dealer, customer, product or "
                                                 "source: change the rule's rates instead"))
        if (override.valid_from and override.valid_to
                and override.valid_to < override.valid_from):
            problems.append(FieldViolation(f"{path}.valid_to", "is before valid_from"))
    for other in others:
        if rule.overlaps(other):
            problems.append(FieldViolation(
                "rule.valid_from",
                f"overlaps rule {other.id} ({other.name}) for "
                f"{rule.product_line or 'every product line'} from {other.valid_from} to "
                f"{other.valid_to or 'open end'}; end that rule first"))
    collect(problems)


def select_rule(rules: list[CommissionRule], base: CommissionBase, product_line: str,
                day: date) -> CommissionRule | None:
    """The rule in force for a sale: one for its product line beats the catch-all."""
    best: CommissionRule | None = None
    for rule in rules:
        if rule.base is not base or not rule.valid_on(day):
            continue
        if rule.product_line and rule.product_line != product_line:
            continue
        if best is None or (bool(rule.product_line), rule.valid_from) > (
                bool(best.product_line), best.valid_from):
            best = rule
    return best
