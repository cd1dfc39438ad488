"""Who may do what in incentive: HQ configures rules, programs and targets; finance
closes and settles periods; everyone sees the dealers of their scope (identity's
ResolveScope), other dealers' data answering NOT_FOUND."""

from __future__ import annotations

from shared.context import Principal
from shared.errors import PermissionDenied
from shared.scope import Scope, Scopes

CONFIGURERS = ("hq_admin",)
SETTLERS = ("hq_admin", "finance")
READ = "incentive.read"


def require(who: Principal, roles: tuple[str, ...], what: str) -> None:
    if not who.has_role(*roles):
        raise PermissionDenied(f"{what} is for {' or '.join(roles)}")


async def scope_of(who: Principal, scopes: Scopes) -> Scope:
    return await scopes.resolve(who, READ)


def visible(scope: Scope, dealer_id: str = "") -> frozenset[str] | None:
    """The dealers a list may show: one asked-for dealer (if visible), or the scope."""
    if dealer_id:
        return frozenset({dealer_id}) if scope.allows(dealer_id) else frozenset()
    return None if scope.all_dealers else scope.dealer_ids
