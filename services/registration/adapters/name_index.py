"""The in-memory fuzzy-name index behind the duplicate check, designed for millions of
customers: names are blocked by city, and inside a city a bigram inverted index on each
name's *core* (see domain.matching) yields a few dozen candidates that are then scored
with rapidfuzz. Exact matches (credit code, normalized name, alias) are answered by the
database; this index only finds the fuzzy ones.

Each replica keeps its own copy: loaded at start, updated after its own commits, and
refreshed from the customers table every few seconds (``refresh``) so customers created
by another replica are found too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.registration.adapters.orm import CustomerRow
from services.registration.domain.matching import (
    Match,
    MatchKind,
    NameFeatures,
    features,
    similarity,
)
from shared.text import normalize_name

MAX_CANDIDATES = 2000


MAX_SUFFIX = 8


@dataclass
class CityBlock:
    ids: list[str] = field(default_factory=list)
    names: list[NameFeatures] = field(default_factory=list)
    aliases: list[bool] = field(default_factory=list)
    # bigram of a core → positions; core suffix (2..8 characters) → positions;
    # normalized name → positions.
    postings: dict[str, list[int]] = field(default_factory=dict)
    suffixes: dict[str, list[int]] = field(default_factory=dict)
    exact: dict[str, list[int]] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)

    def add(self, customer_id: str, name: NameFeatures, alias: bool) -> int:
        position = len(self.ids)
        self.ids.append(customer_id)
        self.names.append(name)
        self.aliases.append(alias)
        for gram in name.bigrams():
            self.postings.setdefault(gram, []).append(position)
        core = name.core
        for start in range(max(0, len(core) - MAX_SUFFIX), len(core) - 1):
            self.suffixes.setdefault(core[start:], []).append(position)
        self.exact.setdefault(name.normalized, []).append(position)
        return position

    def candidates(self, query: NameFeatures) -> set[int]:
        """Positions worth scoring: names whose core ends with the query's core or one of
        its suffixes (简称, a city's short name glued on), plus names sharing one of the
        query's three rarest core bigrams (typos, other spellings)."""
        core = query.core
        found: set[int] = set()
        for start in range(max(0, len(core) - MAX_SUFFIX), len(core) - 1):
            found.update(self.suffixes.get(core[start:], ()))
        postings = sorted((self.postings.get(gram, ()) for gram in query.bigrams()), key=len)
        budget = MAX_CANDIDATES
        for posting in postings[:3]:
            if len(posting) > budget:
                break
            found.update(posting)
            budget -= len(posting)
        return found - self.dead if self.dead else found

    def search(self, query: NameFeatures, threshold_bps: int) -> list[Match]:
        matches = []
        for position in self.candidates(query):
            score = similarity(query, self.names[position])
            if score >= threshold_bps:
                matches.append(Match(self.ids[position], MatchKind.FUZZY_NAME, score))
        return matches


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

    def put_row(self, row) -> None:
        aliases = [normalize_name(a) for a in (row.aliases or [])]
        self.put(row.id, row.city_code, row.normalized_name, aliases)

    async def load(self, db, batch: int = 50_000) -> int:
        """Read every customer (streamed in batches) into the index."""
        started = datetime.now(UTC)
        count = 0
        last_id = ""
        while True:
            async with db.sessions() as session:
                rows = (await session.execute(
                    select(CustomerRow.id, CustomerRow.city_code, CustomerRow.normalized_name,
                           CustomerRow.aliases)
                    .where(CustomerRow.id > last_id).order_by(CustomerRow.id).limit(batch)
                )).all()
            for row in rows:
                self.put_row(row)
            count += len(rows)
            if len(rows) < batch:
                break
            last_id = rows[-1].id
        self.watermark = started - timedelta(seconds=5)
        return count

    async def refresh(self, db) -> int:
        """Pick up customers changed since the last look (by any replica)."""
        since = self.watermark or datetime(2000, 1, 1, tzinfo=UTC)
        started = datetime.now(UTC)
        async with db.sessions() as session:
            rows = (await session.execute(
                select(CustomerRow.id, CustomerRow.city_code, CustomerRow.normalized_name,
                       CustomerRow.aliases).where(CustomerRow.updated_at >= since)
            )).all()
        for row in rows:
            self.put_row(row)
        self.watermark = started - timedelta(seconds=5)
        return len(rows)
