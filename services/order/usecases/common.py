"""Small checks every order use case shares: the caller's role, the dealers a list may
show, a "YYYY-MM-DD" field."""

from __future__ import annotations

from datetime import date

from shared.context import Principal
from shared.errors import InvalidArgument, PermissionDenied
from shared.scope import Scope


def require_role(who: Principal, roles: tuple[str, ...], what: str) -> None:
    if not who.has_role(*roles):
        raise PermissionDenied(f"only {', '.join(roles)} may {what}")


def visible(scope: Scope, dealer_id: str) -> frozenset[str] | None:
    """The dealers a list may show: None for every dealer, else those in scope
    (``dealer_id`` alone when it names one; none when it names one out of scope)."""
    if dealer_id:
        return frozenset({dealer_id}) if scope.allows(dealer_id) else frozenset()
    return None if scope.all_dealers else scope.dealer_ids


def day(value: str, field: str, *, required: bool = True) -> str:
    """Validate a "YYYY-MM-DD" field; returns it normalized, or "" when optional and empty."""
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument.field(field, "is required (YYYY-MM-DD)")
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidArgument.field(field, f"{value!r} is not a date (YYYY-MM-DD)") from exc
