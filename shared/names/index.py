"""The in-memory name index, designed for millions of customers: names are blocked by
city, and inside a city a bigram inverted index on each name's *core* (see
``shared.names.matching``) yields a few dozen candidates that are then scored with
rapidfuzz; exact normalized names and aliases are answered from a hash map. Pure
Python: the service that owns the customers loads and refreshes it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from rapidfuzz import fuzz, process

from shared.names.matching import (
    Match,
    MatchKind,
    NameFeatures,
    features,
    similarity,
)

MAX_CANDIDATES = 2000


MAX_SUFFIX = 8


@dataclass
class CityBlock:
    """One city's names. Names of different categories (医院 vs 诊所) never match, so every
    key below is prefixed with the name's category: a query only meets its own kind."""

    ids: list[str] = field(default_factory=list)
    names: list[NameFeatures] = field(default_factory=list)
    cores: list[str] = field(default_factory=list)  # names[i].core, for rapidfuzz
    aliases: list[bool] = field(default_factory=list)
    # category|bigram of a core → positions; category|core suffix (2..8 characters) →
    # positions; normalized name → positions.
    postings: dict[str, list[int]] = field(default_factory=dict)
    suffixes: dict[str, list[int]] = field(default_factory=dict)
    exact: dict[str, list[int]] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)

    def add(self, customer_id: str, name: NameFeatures, alias: bool) -> int:
        position = len(self.ids)
        self.ids.append(customer_id)
        self.names.append(name)
        self.cores.append(name.core)
        self.aliases.append(alias)
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

    def search(self, query: NameFeatures, threshold_bps: int) -> list[Match]:
        contained, similar = self.candidates(query)
        # Outside containment, similarity() never scores above the plain edit ratio of the
        # two cores (see domain.matching), so rapidfuzz's C loop can drop the hopeless
        # ones before the Python rules run.
        positions = list(similar)
        survivors = process.extract(query.core, [self.cores[p] for p in positions],
                                    scorer=fuzz.ratio, score_cutoff=threshold_bps / 100,
                                    limit=None)
        matches = []
        for position in itertools.chain(contained, (positions[i] for _, _, i in survivors)):
            score = similarity(query, self.names[position])
            if score >= threshold_bps:
                matches.append(Match(self.ids[position], MatchKind.FUZZY_NAME, score))
        return matches


def _bigram_keys(name: NameFeatures) -> list[str]:
    return [f"{name.category}|{gram}" for gram in name.bigrams()]


def _suffix_keys(name: NameFeatures) -> list[str]:
    core = name.core
    return [f"{name.category}|{core[start:]}"
            for start in range(max(0, len(core) - MAX_SUFFIX), len(core) - 1)]


class NameIndex:
    def __init__(self) -> None:
        self.cities: dict[str, CityBlock] = {}
        self.entries: dict[str, list[tuple[str, int]]] = {}
        self.watermark: datetime | None = None

    @property
    def size(self) -> int:
        return len(self.entries)

    def put(self, customer_id: str, city_code: str, normalized_name: str,
            aliases: list[str]) -> None:
        self.remove(customer_id)
        block = self.cities.setdefault(city_code, CityBlock())
        names = [normalized_name] + [a for a in aliases if a and a != normalized_name]
        positions = [(city_code, block.add(customer_id, features(name), index > 0))
                     for index, name in enumerate(names)]
        self.entries[customer_id] = positions

    def remove(self, customer_id: str) -> None:
        for city_code, position in self.entries.pop(customer_id, []):
            self.cities[city_code].dead.add(position)

    def fuzzy(self, city_code: str, normalized_name: str, threshold_bps: int,
              limit: int = 10) -> list[Match]:
        block = self.cities.get(city_code)
        if block is None or not normalized_name:
            return []
        best: dict[str, Match] = {}
        for match in block.search(features(normalized_name), threshold_bps):
            if match.customer_id not in best or best[match.customer_id].score_bps < match.score_bps:
                best[match.customer_id] = match
        return sorted(best.values(), key=lambda m: -m.score_bps)[:limit]

    def exact(self, city_code: str, normalized_name: str) -> list[Match]:
        """Same normalized name (or alias) in the city, from memory (the read path)."""
        block = self.cities.get(city_code)
        if block is None:
            return []
        return [Match(block.ids[p], MatchKind.ALIAS if block.aliases[p]
                      else MatchKind.NORMALIZED_NAME, 10000)
                for p in block.exact.get(normalized_name, ()) if p not in block.dead]
