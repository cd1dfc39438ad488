"""Every event the incentive service reacts to, wired in one place."""

from __future__ import annotations

from services.incentive.service import IncentiveService
from shared.bus.consumer import Subscription
from shared.events.order import ORDER_SUBMITTED


def subscriptions(service: IncentiveService) -> list[Subscription]:
    return [
        Subscription(
            durable="incentive-commission",
            events=(ORDER_SUBMITTED,),
            handler=service.on_order_submitted,
        ),
    ]
