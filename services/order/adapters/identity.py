"""The order service's view of identity: a dealer's tier, asked over gRPC (GetOrgUnit
through the service's identity channel, as the caller) and cached for a short time.

Chosen over an event-fed projection because the tier is needed only when pricing an
order, identity is already called for the caller's scope on the same request, and a
cache of a minute keeps the cost to one call per dealer per minute. A tier change is
therefore visible to pricing within ``ttl_seconds``."""

from __future__ import annotations

import time

import grpc
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from shared.context import outgoing_metadata
from shared.errors import NotFound, Unavailable


class DealerTiers:
    def __init__(self, channel: grpc.aio.Channel, ttl_seconds: float = 60.0) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, int]] = {}

    async def tier_of(self, dealer_id: str) -> int:
        """The dealer's DealerTier number (0 when identity has none on record)."""
        now = time.monotonic()
        cached = self._cache.get(dealer_id)
        if cached and cached[0] > now:
            return cached[1]
        try:
            response = await self._stub.GetOrgUnit(
                identity_pb2.GetOrgUnitRequest(id=dealer_id), metadata=outgoing_metadata(),
                timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"dealer {dealer_id} not found") from exc
            raise Unavailable(f"identity service unavailable: {exc.details()}") from exc
        tier = response.org_unit.tier
        self._cache[dealer_id] = (now + self._ttl, tier)
        return tier

    def set(self, dealer_id: str, tier: int) -> None:
        """Seed the cache (tests, or a caller that already knows the tier)."""
        self._cache[dealer_id] = (time.monotonic() + self._ttl, tier)
