"""The cached ResolveScope client every service but identity uses (``Scopes``)."""

from __future__ import annotations

import time

import grpc
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from shared.context import Principal, outgoing_metadata
from shared.errors import Unavailable
from shared.scope import NOTHING, Scope


class ScopeResolver:
    """Asks identity, caches per (user, action) for a short time; identity events clear
    the cache as soon as a scope changes (``invalidate``)."""

    def __init__(self, channel: grpc.aio.Channel, ttl_seconds: float = 30.0) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, Scope]] = {}

    async def resolve(self, principal: Principal, action: str) -> Scope:
        if principal.subject == "service:system":
            return Scope(all_dealers=True, dealer_ids=frozenset())
        key = (principal.subject, action)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            response = await self._stub.ResolveScope(
                identity_pb2.ResolveScopeRequest(action=action),
                metadata=outgoing_metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return NOTHING
            raise Unavailable(f"identity service unavailable: {exc.details()}") from exc
        scope = Scope(all_dealers=response.all_dealers, dealer_ids=frozenset(response.dealer_ids))
        self._cache[key] = (now + self._ttl, scope)
        return scope

    def invalidate(self, subject: str | None = None) -> None:
        if subject is None:
            self._cache.clear()
            return
        for key in [key for key in self._cache if key[0] == subject]:
            del self._cache[key]
