"""The incentive service's domain objects as protobuf messages: its responses (api/)
and its event payloads (recorded by the use cases)."""

from __future__ import annotations

from qudao.incentive.v1 import incentive_pb2

from services.incentive.domain.accruals import Accrual, AccrualKind
from shared.convert import money_to_proto, to_timestamp

KIND_TO_PROTO = {
    AccrualKind.COMMISSION: incentive_pb2.ACCRUAL_KIND_COMMISSION,
    AccrualKind.REBATE: incentive_pb2.ACCRUAL_KIND_REBATE,
}


def accrual_to_proto(accrual: Accrual) -> incentive_pb2.Accrual:
    return incentive_pb2.Accrual(
        id=accrual.id, dealer_id=accrual.dealer_id, kind=KIND_TO_PROTO[accrual.kind],
        source_type=accrual.source_type, source_id=accrual.source_id,
        base_amount=money_to_proto(accrual.base), rate_bps=accrual.rate_bps,
        amount=money_to_proto(accrual.amount), source_event_id=accrual.source_event_id,
        recorded_at=to_timestamp(accrual.recorded_at))
