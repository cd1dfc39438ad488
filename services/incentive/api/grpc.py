"""The incentive service's gRPC servicer: translate the request, call the use case,
translate the answer."""

from __future__ import annotations

from qudao.common.v1 import page_pb2
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.messages import accrual_to_proto
from services.incentive.usecases import accruals
from services.incentive.usecases.ports import Deps
from shared.context import current_principal
from shared.pagination import PageRequest


class IncentiveServicer(incentive_pb2_grpc.IncentiveServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def ListAccruals(self, request, context):
        page = await accruals.list_accruals(
            request.dealer_id, request.source_id,
            PageRequest.of(request.page.page_size, request.page.page_token),
            who=current_principal(), uow=self.deps.uow(), scopes=self.deps.scopes)
        return incentive_pb2.ListAccrualsResponse(
            accruals=[accrual_to_proto(a) for a in page.items],
            page=page_pb2.PageInfo(next_page_token=page.next_token, total_size=page.total or 0))

    async def GetAccrual(self, request, context):
        accrual = await accruals.get_accrual(request.id, who=current_principal(),
                                             uow=self.deps.uow(), scopes=self.deps.scopes)
        return incentive_pb2.GetAccrualResponse(accrual=accrual_to_proto(accrual))
