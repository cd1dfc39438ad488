"""The scope cache of one identity process, in memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.identity.domain.audience import DealerSummary
from services.identity.domain.rules import ScopeAnswer

SCOPE_CACHE_SECONDS = 60.0
SCOPE_CACHE_ENTRIES = 10_000


class InProcessScopeCache:
    """ResolveScope answers (each for at most a minute) and the dealer summaries, both
    valid for one generation: ``invalidate`` (after this process commits a change, or on
    another replica's change event) starts the next."""

    def __init__(self, ttl_seconds: float = SCOPE_CACHE_SECONDS,
                 max_entries: int = SCOPE_CACHE_ENTRIES,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.generation = 0
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._answers: dict[tuple[str, str, str], tuple[int, float, ScopeAnswer]] = {}
        self._summaries: tuple[int, list[DealerSummary]] | None = None

    def answer(self, key: tuple[str, str, str]) -> ScopeAnswer | None:
        entry = self._answers.get(key)
        if entry is None or entry[0] != self.generation or entry[1] <= self._monotonic():
            return None
        return entry[2]

    def remember(self, key: tuple[str, str, str], generation: int,
                 answer: ScopeAnswer) -> None:
        if generation != self.generation:
            return  # computed before a change committed: stale already
        if len(self._answers) >= self.max_entries:
            self._answers.clear()
        self._answers[key] = (generation, self._monotonic() + self.ttl_seconds, answer)

    def dealer_summaries(self) -> list[DealerSummary] | None:
        if self._summaries is None or self._summaries[0] != self.generation:
            return None
        return self._summaries[1]

    def remember_dealer_summaries(self, generation: int,
                                  summaries: list[DealerSummary]) -> None:
        if generation == self.generation:
            self._summaries = (generation, summaries)

    def invalidate(self) -> None:
        self.generation += 1
        self._answers.clear()
        self._summaries = None
