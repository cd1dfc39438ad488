"""Every event the order service reacts to, in one place."""

from __future__ import annotations

from services.order.service import OrderService
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.events.incentive import REBATE_CREDITED


async def on_rebate_credited(service: OrderService, transaction, event: Event) -> None:
    await service.on_rebate_credited(transaction, event)


SUBSCRIPTIONS = [
    Subscription("order-rebate-credit", (REBATE_CREDITED,), on_rebate_credited),
]
