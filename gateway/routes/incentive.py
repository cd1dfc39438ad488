"""Commission and rebate accruals."""

from __future__ import annotations

from fastapi import APIRouter
from qudao.incentive.v1 import incentive_pb2

from gateway.clients import call
from gateway.protojson import to_json
from gateway.routes.common import Caller, Page, Services

router = APIRouter(prefix="/api/v1", tags=["incentive"])


@router.get("/accruals")
async def list_accruals(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                        source_id: str = "") -> dict:
    return to_json(await call(services.incentive.ListAccruals, incentive_pb2.ListAccrualsRequest(
        dealer_id=dealer_id, source_id=source_id, page=page)))


@router.get("/accruals/{accrual_id}")
async def get_accrual(accrual_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.incentive.GetAccrual,
                               incentive_pb2.GetAccrualRequest(id=accrual_id))).accrual)
