"""Which dealers a principal may act on. Identity answers (ResolveScope); every other
service asks through a cached client (``shared.scope_client``) and filters each query
by the answer. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.context import Principal
from shared.errors import NotFound


@dataclass(frozen=True)
class Scope:
    all_dealers: bool
    dealer_ids: frozenset[str]

    def allows(self, dealer_id: str) -> bool:
        return self.all_dealers or dealer_id in self.dealer_ids

    def require(self, dealer_id: str, what: str = "dealer") -> None:
        """Out of scope answers NOT_FOUND, never PERMISSION_DENIED, so ids leak nothing."""
        if not self.allows(dealer_id):
            raise NotFound(f"{what} {dealer_id} not found")


NOTHING = Scope(all_dealers=False, dealer_ids=frozenset())


class Scopes(Protocol):
    """Which dealers a principal may act on, for an action (identity's ResolveScope)."""

    async def resolve(self, principal: Principal, action: str) -> Scope: ...
