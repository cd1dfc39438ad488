"""ResolveScope: the dealers a user may act on, asked by every other service on each
call, so answers are cached until the next audited change commits."""

from __future__ import annotations

import time

from qudao.identity.v1 import identity_pb2

from services.identity.adapters.orm import UserRow
from services.identity.domain.rules import Role
from services.identity.usecases.common import UseCaseBase
from shared.context import current_principal
from shared.errors import NotFound, PermissionDenied

SCOPE_CACHE_SECONDS = 60.0
SCOPE_CACHE_ENTRIES = 10_000


class ScopeUseCases(UseCaseBase):
    async def resolve_scope(self, user_id: str, action: str, product_line: str = ""
                            ) -> identity_pb2.ResolveScopeResponse:
        principal = current_principal()
        if user_id and user_id != principal.user_id and not principal.has_role(Role.HQ_ADMIN):
            raise PermissionDenied("only HQ admins resolve another user's scope")
        key = (user_id or principal.user_id or principal.subject, action, product_line)
        generation = self._scope_generation
        cached = self._scope_cache.get(key)
        if cached is not None and cached[0] == generation and cached[1] > time.monotonic():
            return cached[2]
        async with self.db.read() as session:
            if user_id and user_id != principal.user_id:
                user = await session.get(UserRow, user_id)
                if user is None:
                    raise NotFound(f"user {user_id} not found")
                principal = self._principal(user, await self._dealer_of(session, user.org_unit_id))
            principal = await self._current(session, principal)
            scope = await self._scope(session, principal, action, product_line)
        response = identity_pb2.ResolveScopeResponse(all_dealers=scope.all_dealers,
                                                     dealer_ids=sorted(scope.dealer_ids))
        if len(self._scope_cache) > SCOPE_CACHE_ENTRIES:
            self._scope_cache.clear()
        # Stored under the generation read before the queries: a change committed while
        # they ran makes this entry stale at once.
        self._scope_cache[key] = (generation, time.monotonic() + SCOPE_CACHE_SECONDS, response)
        return response
