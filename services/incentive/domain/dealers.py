"""Dealers as incentive knows them from identity's events: for audiences (tags, region,
tier, product lines, territory), reports (region, channel managers) and target imports
(credit code). Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.audience import DealerFacts, Predicate


@dataclass(frozen=True)
class Dealer:
    id: str
    name: str = ""
    region_code: str = ""
    tier: str = ""
    active: bool = True
    product_lines: tuple[str, ...] = ()
    division_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    credit_code: str = ""
    updated_at: datetime | None = None

    def facts(self) -> DealerFacts:
        return DealerFacts(id=self.id, region_code=self.region_code, tier=self.tier,
                           product_lines=frozenset(self.product_lines),
                           division_codes=self.division_codes, tags=frozenset(self.tags))


def in_audience(dealer: Dealer, predicate: Predicate | None,
                product_lines: tuple[str, ...]) -> bool:
    """An active dealer is in a program's audience when the expression matches it, or,
    without an expression, when it carries one of the program's product lines."""
    if not dealer.active:
        return False
    if predicate is None:
        return bool(set(dealer.product_lines) & set(product_lines))
    return predicate(dealer.facts())
