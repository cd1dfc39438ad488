"""The in-memory name index, designed for millions of customers: names are blocked by
city, and inside a city a bigram inverted index on each name's *core* (see
``shared.names.matching``) yields a few dozen candidates that are then scored with
rapidfuzz; exact normalized names, aliases, canonical forms (the abbreviation rules of
``shared.names.rules``) and normalized addresses are answered from hash maps. Names of
institutions (a university's hospitals) are also kept across cities, so a branch campus
in another city is found for review. Pure Python: the service that owns the customers
loads and refreshes it."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from rapidfuzz import fuzz, process

from shared import divisions
from shared.names.matching import (
    Match,
    MatchKind,
    NameFeatures,
    Reason,
    compare,
    features,
    rank,
)
from shared.names.rules import canonical

MAX_CANDIDATES = 2000
MAX_SUFFIX = 8
# A branch campus in another city scores below any same-city look-alike.
OTHER_CITY_SCORE_BPS = 9000


class Entry(enum.IntEnum):
    """What an indexed name is of its customer."""

    NAME = 1
    ALIAS = 2
    CANONICAL = 3  # the long form the abbreviation rules give a name or alias


_ENTRY_REASONS = {Entry.NAME: (), Entry.ALIAS: (Reason.ALIAS,),
                  Entry.CANONICAL: (Reason.ABBREVIATION,)}


@dataclass
class CityBlock:
    """One city's names. Names of different categories (医院 vs 诊所) never match, so every
    key below is prefixed with the name's category: a query only meets its own kind."""

    ids: list[str] = field(default_factory=list)
    names: list[NameFeatures] = field(default_factory=list)
    cores: list[str] = field(default_factory=list)  # names[i].core, for rapidfuzz
    entries: list[Entry] = field(default_factory=list)
    # each name's customer's division (district or city code), "" when not known
    divisions: list[str] = field(default_factory=list)
    # category|bigram of a core → positions; category|core suffix (2..8 characters) →
    # positions; normalized name → positions; normalized address → positions.
    postings: dict[str, list[int]] = field(default_factory=dict)
    suffixes: dict[str, list[int]] = field(default_factory=dict)
    exact: dict[str, list[int]] = field(default_factory=dict)
    addresses: dict[str, list[int]] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)

    def add(self, customer_id: str, name: NameFeatures, entry: Entry,
            division_code: str = "") -> int:
        position = len(self.ids)
        self.ids.append(customer_id)
        self.names.append(name)
        self.cores.append(name.core)
        self.entries.append(entry)
        self.divisions.append(division_code)
        for key in _bigram_keys(name):
            self.postings.setdefault(key, []).append(position)
        for key in _suffix_keys(name):
            self.suffixes.setdefault(key, []).append(position)
        self.exact.setdefault(name.normalized, []).append(position)
        return position

    def candidates(self, query: NameFeatures) -> tuple[set[int], set[int]]:
        """Positions worth scoring, in two sets. *Contained*: names whose core ends with
        the query's core or one of its suffixes (简称, a city's short name glued on) —
        these may score high even when their edit distance is large. *Similar*: names
        sharing one of the query's three rarest core bigrams (typos, other spellings)."""
        contained: set[int] = set()
        for key in _suffix_keys(query):
            contained.update(self.suffixes.get(key, ()))
        postings = sorted((self.postings.get(key, ()) for key in _bigram_keys(query)), key=len)
        similar: set[int] = set()
        budget = MAX_CANDIDATES
        for posting in postings[:3]:
            if len(posting) > budget:
                break
            similar.update(posting)
            budget -= len(posting)
        similar -= contained
        if self.dead:
            contained -= self.dead
            similar -= self.dead
        return contained, similar

    def search(self, query: NameFeatures, threshold_bps: int,
               division_code: str = "") -> list[Match]:
        """Look-alikes scoring at least the threshold. The same distinctive core is a
        duplicate (CORE_NAME) where the two divisions agree (one contains the other, or
        either is unknown); in another district of the city it is for review."""
        contained, similar = self.candidates(query)
        # Outside containment, similarity never scores above the plain edit ratio of the
        # two cores (see matching.compare), so rapidfuzz's C loop can drop the hopeless
        # ones before the Python rules run.
        positions = list(similar)
        survivors = process.extract(query.core, [self.cores[p] for p in positions],
                                    scorer=fuzz.ratio, score_cutoff=threshold_bps / 100,
                                    limit=None)
        matches = []
        for position in itertools.chain(contained, (positions[i] for _, _, i in survivors)):
            if self.names[position].normalized == query.normalized:
                matches += self._named_at(position)  # an exact hit, said as such
                continue
            score, same_core = compare(query, self.names[position])
            if score >= threshold_bps:
                kind = (MatchKind.CORE_NAME if same_core
                        and _same_division(division_code, self.divisions[position])
                        else MatchKind.FUZZY_NAME)
                reason = Reason.CORE if same_core else Reason.SIMILAR_NAME
                matches.append(Match(self.ids[position], kind, score,
                                     (*_ENTRY_REASONS[self.entries[position]], reason)))
        return matches

    def named(self, normalized: str) -> list[Match]:
        return [match for p in self.exact.get(normalized, ()) if p not in self.dead
                for match in self._named_at(p)]

    def _named_at(self, position: int) -> list[Match]:
        entry = self.entries[position]
        return [Match(self.ids[position],
                      MatchKind.ALIAS if entry == Entry.ALIAS else MatchKind.NORMALIZED_NAME,
                      10000, _ENTRY_REASONS[entry] or (Reason.NAME,))]


def _same_division(a: str, b: str) -> bool:
    return not a or not b or divisions.contains(a, b) or divisions.contains(b, a)


def _bigram_keys(name: NameFeatures) -> list[str]:
    return [f"{name.category}|{gram}" for gram in name.bigrams()]


def _suffix_keys(name: NameFeatures) -> list[str]:
    core = name.core
    return [f"{name.category}|{core[start:]}"
            for start in range(max(0, len(core) - MAX_SUFFIX), len(core) - 1)]


def _institution_keys(name: NameFeatures) -> list[str]:
    """Keys of an institution's hospital across cities: with the institution (四川大学华西),
    and its distinctive core alone (华西), which a campus query may give without it."""
    if not name.institution or name.generic or len(name.core) < 2:
        return []
    return [_institution_key(name), f"C|{name.category}|{name.core}"]


def _institution_key(name: NameFeatures) -> str:
    # The places stripped off the front belong to the institution's name (浙江 大学).
    return f"I|{name.category}|{''.join(name.places)}{name.institution}|{name.core}"


class NameIndex:
    def __init__(self) -> None:
        self.cities: dict[str, CityBlock] = {}
        self.entries: dict[str, list[tuple[str, int]]] = {}
        # institution keys → (city, position) in every city
        self.institutions: dict[str, list[tuple[str, int]]] = {}
        self.watermark: datetime | None = None

    @property
    def size(self) -> int:
        return len(self.entries)

    def put(self, customer_id: str, city_code: str, normalized_name: str,
            aliases: list[str], address_key: str = "", division_code: str = "") -> None:
        """Index a customer's name and aliases, each with its canonical long form when
        the abbreviation rules give one, its normalized address and its division."""
        self.remove(customer_id)
        block = self.cities.setdefault(city_code, CityBlock())
        names: dict[str, Entry] = {normalized_name: Entry.NAME}
        for alias in aliases:
            if alias:
                names.setdefault(alias, Entry.ALIAS)
        for name in list(names):
            names.setdefault(canonical(name, city_code), Entry.CANONICAL)
        positions = []
        for name, entry in names.items():
            if not name:
                continue
            name_features = features(name)
            position = block.add(customer_id, name_features, entry, division_code)
            positions.append((city_code, position))
            for key in _institution_keys(name_features):
                self.institutions.setdefault(key, []).append((city_code, position))
        if address_key and positions:
            block.addresses.setdefault(address_key, []).append(positions[0][1])
        self.entries[customer_id] = positions

    def remove(self, customer_id: str) -> None:
        for city_code, position in self.entries.pop(customer_id, []):
            self.cities[city_code].dead.add(position)

    def fuzzy(self, city_code: str, normalized_name: str, threshold_bps: int,
              limit: int = 10, division_code: str = "") -> list[Match]:
        """Look-alikes in the city (the query as given and its canonical form), best
        first, one per customer; ``division_code`` is where the query lies."""
        block = self.cities.get(city_code)
        if block is None or not normalized_name:
            return []
        found: list[Match] = []
        for query in _forms(normalized_name, city_code):
            found += block.search(features(query), threshold_bps, division_code)
        return rank(found)[:limit]

    def exact(self, city_code: str, normalized_name: str) -> list[Match]:
        """Same normalized name, alias or canonical form in the city, from memory."""
        block = self.cities.get(city_code)
        if block is None or not normalized_name:
            return []
        found: list[Match] = []
        forms = _forms(normalized_name, city_code)
        for query in forms:
            rewritten = (Reason.ABBREVIATION,) if query != normalized_name else ()
            found += [m.because(*rewritten) for m in block.named(query)]
        return rank(found)

    def at_address(self, city_code: str, address_key: str,
                   normalized_name: str) -> list[Match]:
        """Customers at the same normalized address whose name is of the same kind (a
        hospital at a hospital's address): the same customer under another name."""
        block = self.cities.get(city_code)
        if block is None or not address_key:
            return []
        category = features(normalized_name).category if normalized_name else ""
        return [Match(block.ids[p], MatchKind.ADDRESS, 10000, (Reason.ADDRESS,))
                for p in block.addresses.get(address_key, ())
                if p not in block.dead and (not category
                                            or block.names[p].category == category)]

    def other_cities(self, city_code: str, normalized_name: str, *,
                     campus: bool) -> list[Match]:
        """The same institution's hospital in other cities (a branch campus): by the
        institution and core the query names, or — for a query naming a campus — by the
        core alone."""
        query = features(canonical(normalized_name, city_code))
        if query.generic or len(query.core) < 2:
            return []
        if query.institution:
            key = _institution_key(query)
        elif campus:
            key = f"C|{query.category}|{query.core}"
        else:
            return []
        found = []
        for city, position in self.institutions.get(key, ()):
            block = self.cities[city]
            if city != city_code and position not in block.dead:
                found.append(Match(block.ids[position], MatchKind.OTHER_CITY,
                                   OTHER_CITY_SCORE_BPS, (Reason.OTHER_CITY,)))
        return rank(found)


def _forms(normalized: str, city_code: str) -> list[str]:
    rewritten = canonical(normalized, city_code)
    return [normalized] if rewritten == normalized else [normalized, rewritten]

