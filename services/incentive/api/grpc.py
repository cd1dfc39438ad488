"""The incentive service's gRPC servicer: translate messages, call the use case."""

from __future__ import annotations

from qudao.common.v1 import page_pb2
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.service import IncentiveService
from shared.pagination import page_size


class IncentiveServicer(incentive_pb2_grpc.IncentiveServiceServicer):
    def __init__(self, service: IncentiveService) -> None:
        self.service = service

    async def ListAccruals(self, request, context):
        accruals, next_token = await self.service.list_accruals(
            request.dealer_id, request.source_id, page_size(request.page.page_size),
            request.page.page_token)
        return incentive_pb2.ListAccrualsResponse(
            accruals=accruals, page=page_pb2.PageInfo(next_page_token=next_token))

    async def GetAccrual(self, request, context):
        return incentive_pb2.GetAccrualResponse(accrual=await self.service.get_accrual(request.id))
