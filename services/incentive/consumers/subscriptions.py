"""Every event the incentive service reacts to, wired in one place."""

from __future__ import annotations

from services.incentive.service import IncentiveService
from shared.bus.consumer import Subscription


def subscriptions(service: IncentiveService) -> list[Subscription]:
    return [
        Subscription(
            durable="incentive-commission",
            producer="order",
            subjects=("qudao.order.order.submitted",),
            handler=service.on_order_submitted,
        ),
    ]
