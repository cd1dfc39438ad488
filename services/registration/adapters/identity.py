"""Identity, for a dealer registration has not projected yet (its event still in
flight): read through with GetOrgUnit, as the caller."""

from __future__ import annotations

import grpc
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.registration.domain.dealers import DealerFacts
from services.registration.messages import dealer_facts
from shared.context import outgoing_metadata
from shared.errors import Unavailable

# Identity's answers that mean "no such dealer for you".
_ABSENT = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
           grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


class IdentityDealers:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 5.0) -> None:
        self.stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self.timeout = timeout

    async def dealer(self, dealer_id: str) -> DealerFacts | None:
        try:
            response = await self.stub.GetOrgUnit(identity_pb2.GetOrgUnitRequest(id=dealer_id),
                                                  metadata=outgoing_metadata(),
                                                  timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _ABSENT:
                return None
            raise Unavailable(f"identity service unavailable: {exc.details()}") from exc
        return dealer_facts(response.org_unit)
