"""Audience expressions (the rules live in shared.audience, so another service can
evaluate an audience for one dealer exactly as identity's QueryAudience does), and what
tags and audiences need of a dealer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.audience import DealerFacts, Node, Predicate, compile_expression, term

__all__ = ["DealerFacts", "DealerSummary", "Node", "Predicate", "compile_expression", "term"]


@dataclass(frozen=True)
class DealerSummary:
    """What tags and audiences need of a dealer: its facts, status and tags apart."""

    facts: DealerFacts
    status: str
    derived_tags: tuple[str, ...]
    custom_tags: tuple[str, ...]

    @classmethod
    def of(cls, dealer_id: str, *, status: str, region_code: str, tier: str,
           product_lines: Iterable[str], division_codes: Iterable[str],
           derived_tags: Iterable[str], custom_tags: Iterable[str]) -> DealerSummary:
        derived, custom = tuple(derived_tags), tuple(custom_tags)
        return cls(DealerFacts(id=dealer_id, region_code=region_code, tier=tier,
                               product_lines=frozenset(product_lines),
                               division_codes=tuple(division_codes),
                               tags=frozenset((*derived, *custom))),
                   status, derived, custom)
