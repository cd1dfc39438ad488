"""Which customer a row's hospital name means, with exactly the normalizer and matcher
of registration's duplicate check (``shared.text.normalize_name``, ``shared.names``):
the normalized name or an alias exactly, else a fuzzy match above the threshold within
the cities of the dealer's territory. Several customers → ambiguous, with the
candidates. For a platform dealer, one of its own sub-dealers named as the customer
makes the row a transfer. Pure Python, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from services.flow.domain.checks import Candidate
from shared import divisions
from shared.names.matching import Match, rank
from shared.text import normalize_name

MAX_CANDIDATES = 5


class CustomerDirectory(Protocol):
    """The customers flow knows, indexed for matching (adapters/name_index.py)."""

    def exact_anywhere(self, normalized: str) -> list[Match]: ...

    def fuzzy(self, city_code: str, normalized: str, threshold_bps: int) -> list[Match]: ...

    def cities(self) -> Iterable[str]: ...

    def describe(self, customer_id: str) -> tuple[str, str]:
        """(name, city code)."""
        ...


@dataclass(frozen=True)
class Resolution:
    customer_id: str = ""
    transfer_to_dealer_id: str = ""
    code: str = ""  # "" when resolved, else UNKNOWN_HOSPITAL / AMBIGUOUS_HOSPITAL
    candidates: tuple[Candidate, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.code


def territory_cities(division_codes: Iterable[str], known_cities: Iterable[str]) -> set[str]:
    """The city codes a territory covers: a province covers every known city in it."""
    cities: set[str] = set()
    known = list(known_cities)
    for code in division_codes:
        city = divisions.city_of(code)
        if city:
            cities.add(city)
        elif divisions.is_code(code):
            province = code[:2]
            cities.update(c for c in known if c.startswith(province))
    return cities


class HospitalResolver:
    """Resolves names for one dealer; each distinct name is resolved once."""

    def __init__(self, directory: CustomerDirectory, *, territory: set[str],
                 sub_dealers: dict[str, str], threshold_bps: int) -> None:
        self.directory = directory
        self.territory = territory
        # normalized sub-dealer name → sub-dealer id (platform dealers only)
        self.sub_dealers = sub_dealers
        self.threshold_bps = threshold_bps

    def resolve(self, name: str) -> Resolution:
        normalized = normalize_name(name)
        if not normalized:
            return Resolution(code="UNKNOWN_HOSPITAL")
        transfer = self.sub_dealers.get(normalized)
        if transfer:
            return Resolution(transfer_to_dealer_id=transfer)
        exact = rank(self.directory.exact_anywhere(normalized))
        if len(exact) > 1 and self.territory:
            inside = [m for m in exact
                      if self.directory.describe(m.customer_id)[1] in self.territory]
            exact = inside or exact
        if len(exact) == 1:
            return Resolution(customer_id=exact[0].customer_id)
        if exact:
            return self._ambiguous(exact)
        fuzzy: list[Match] = []
        for city in self.territory:
            fuzzy += self.directory.fuzzy(city, normalized, self.threshold_bps)
        fuzzy = rank(fuzzy)
        if len(fuzzy) == 1:
            return Resolution(customer_id=fuzzy[0].customer_id)
        if fuzzy:
            return self._ambiguous(fuzzy)
        return Resolution(code="UNKNOWN_HOSPITAL")

    def _ambiguous(self, matches: list[Match]) -> Resolution:
        candidates = []
        for match in matches[:MAX_CANDIDATES]:
            name, city = self.directory.describe(match.customer_id)
            candidates.append(Candidate(match.customer_id, name, city, match.score_bps))
        return Resolution(code="AMBIGUOUS_HOSPITAL", candidates=tuple(candidates))
