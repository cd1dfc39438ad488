"""Identity's QueryAudience, asked as the calling user (their token passes on)."""

from __future__ import annotations

import grpc
from qudao.common.v1 import page_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from shared.context import outgoing_metadata
from shared.errors import Unavailable


class IdentityAudiences:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)

    async def members(self, expression: bytes, product_lines: tuple[str, ...]) -> set[str]:
        if expression:
            query = identity_pb2.AudienceExpression.FromString(expression)
        else:
            query = identity_pb2.AudienceExpression(any_of=identity_pb2.AudienceExpressionList(
                expressions=[identity_pb2.AudienceExpression(
                    term=identity_pb2.AudienceTerm(product_line=line))
                    for line in product_lines]))
        members: set[str] = set()
        token = ""
        while True:
            try:
                response = await self._stub.QueryAudience(identity_pb2.QueryAudienceRequest(
                    expression=query, page=page_pb2.PageRequest(page_size=500,
                                                                page_token=token)),
                    metadata=outgoing_metadata(), timeout=30)
            except grpc.aio.AioRpcError as exc:
                raise Unavailable(f"identity's audience query failed: {exc.details()}") from exc
            members |= {dealer.id for dealer in response.dealers}
            token = response.page.next_page_token
            if not token:
                return members
