"""Every event the incentive service reacts to, in one place: the subscriptions, and
their handlers (thin: event payload → domain facts → use case)."""

from __future__ import annotations

from qudao.order.v1 import events_pb2 as order_events

from services.incentive.usecases import accruals
from services.incentive.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.convert import money_from_proto
from shared.events.order import ORDER_SUBMITTED


async def on_order_submitted(deps: Deps, transaction, event: Event) -> None:
    payload: order_events.OrderSubmitted = event.payload
    order = accruals.OrderFacts(payload.order.id, payload.order.dealer_id,
                                money_from_proto(payload.order.total))
    await accruals.accrue_commission(order, event_id=event.event_id,
                                     uow=deps.uow_in(transaction), rule=deps.commission,
                                     clock=deps.clock, ids=deps.ids)


SUBSCRIPTIONS = [
    Subscription("incentive-commission", (ORDER_SUBMITTED,), on_order_submitted),
]
