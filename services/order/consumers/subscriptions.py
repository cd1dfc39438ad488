"""Every event the order service reacts to, wired in one place."""

from __future__ import annotations

from services.order.service import OrderService
from shared.bus.consumer import Subscription
from shared.events.incentive import REBATE_CREDITED


def subscriptions(service: OrderService) -> list[Subscription]:
    return [
        Subscription(
            durable="order-rebate-credit",
            events=(REBATE_CREDITED,),
            handler=service.on_rebate_credited,
        ),
    ]
