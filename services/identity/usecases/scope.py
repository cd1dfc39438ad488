"""ResolveScope: the dealers a user may act on, asked by every other service on each
call (through its own cache), so answers are kept here too until the next change."""

from __future__ import annotations

from services.identity.domain.rules import Role, ScopeAnswer
from services.identity.usecases.access import as_now, scope_of
from services.identity.usecases.ports import IdentityUnitOfWork, ScopeCache
from shared.context import Principal
from shared.errors import NotFound, PermissionDenied


async def resolve_scope(user_id: str, action: str, product_line: str, *, who: Principal,
                        uow: IdentityUnitOfWork, scope_cache: ScopeCache) -> ScopeAnswer:
    """The scope of ``who`` (or, for an HQ admin, of the user ``user_id``) for the action
    and, for a channel manager, the product line."""
    if user_id and user_id != who.user_id and not who.has_role(Role.HQ_ADMIN):
        raise PermissionDenied("only HQ admins resolve another user's scope")
    key = (user_id or who.user_id or who.subject, action, product_line)
    generation = scope_cache.generation
    cached = scope_cache.answer(key)
    if cached is not None:
        return cached
    async with uow.read():
        principal = who
        if user_id and user_id != who.user_id:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            principal = user.principal
        scope = await scope_of(uow, await as_now(uow, principal), action, product_line)
    # Kept under the generation read before the queries: a change committed while they
    # ran makes this answer stale at once.
    scope_cache.remember(key, generation, scope)
    return scope
