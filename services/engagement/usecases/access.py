"""Who may do what in engagement: HQ admins set SOP rules and the health policy; staff
see the tasks, execution and health of the dealers in their scope (identity's
ResolveScope); dealer staff see their own dealer's tasks and health; everyone sees only
their own inbox. Out-of-scope dealers answer NOT_FOUND."""

from __future__ import annotations

from shared.context import Principal
from shared.errors import PermissionDenied
from shared.scope import Scope, Scopes

CONFIGURERS = ("hq_admin",)
READ = "engagement.read"


def require(who: Principal, roles: tuple[str, ...], what: str) -> None:
    if not who.has_role(*roles):
        raise PermissionDenied(f"{what} is for {' or '.join(roles)}")


def require_staff(who: Principal, what: str) -> None:
    if who.is_dealer_staff or not who.user_id:
        raise PermissionDenied(f"{what} is for channel and HQ staff")


async def scope_of(who: Principal, scopes: Scopes) -> Scope:
    return await scopes.resolve(who, READ)


def visible(scope: Scope, dealer_id: str = "") -> frozenset[str] | None:
    """The dealers a list may show: one asked-for dealer (if visible), or the scope."""
    if dealer_id:
        return frozenset({dealer_id}) if scope.allows(dealer_id) else frozenset()
    return None if scope.all_dealers else scope.dealer_ids
