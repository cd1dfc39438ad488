"""Flow's customer projection loaded into the shared name index (as registration loads
its customers in services/registration/adapters/name_index.py), so a hospital name in a
sell-through file resolves exactly as registration's duplicate check would match it.
Each replica keeps its own copy and picks up changed customers before each validation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from services.flow.domain.model import Customer
from services.flow.usecases.ports import FlowUnitOfWork
from shared.names.index import NameIndex
from shared.names.matching import Match, MatchKind
from shared.text import normalize_name


class CustomerDirectory:
    def __init__(self, uow: Callable[[], FlowUnitOfWork]) -> None:
        self.uow = uow
        self.index = NameIndex()
        # normalized name or alias → customer ids, across every city
        self._names: dict[str, set[str]] = defaultdict(set)
        self._keys: dict[str, list[str]] = {}
        self._described: dict[str, tuple[str, str]] = {}
        self._watermark: datetime | None = None

    def put(self, customer: Customer) -> None:
        for key in self._keys.pop(customer.id, []):
            self._names[key].discard(customer.id)
        if customer.merged_into:
            # Its spellings are aliases of the customer it was folded into now.
            self.index.remove(customer.id)
            self._described.pop(customer.id, None)
            return
        aliases = [normalize_name(alias) for alias in customer.aliases]
        self.index.put(customer.id, customer.city_code, customer.normalized_name, aliases)
        keys = [k for k in {customer.normalized_name, *aliases} if k]
        for key in keys:
            self._names[key].add(customer.id)
        self._keys[customer.id] = keys
        self._described[customer.id] = (customer.name, customer.city_code)

    async def refresh(self) -> int:
        """Load customers changed since the last look (all of them the first time)."""
        started = datetime.now(UTC)
        uow = self.uow()
        async with uow.read():
            changed = await uow.projections.customers_changed_since(self._watermark)
        for customer in changed:
            self.put(customer)
        self._watermark = started - timedelta(seconds=5)
        return len(changed)

    def exact_anywhere(self, normalized: str) -> list[Match]:
        return [Match(customer_id, MatchKind.NORMALIZED_NAME, 10000)
                for customer_id in sorted(self._names.get(normalized, ()))]

    def fuzzy(self, city_code: str, normalized: str, threshold_bps: int) -> list[Match]:
        return self.index.fuzzy(city_code, normalized, threshold_bps)

    def cities(self) -> Iterable[str]:
        return self.index.cities.keys()

    def describe(self, customer_id: str) -> tuple[str, str]:
        return self._described.get(customer_id, ("", ""))
