"""The order service's settings (QUDAO_ORDER_*; options QUDAO_ORDER_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    process: ClassVar[str] = "order"

    # The selling company of orders and accounts that name none.
    default_selling_company: str = "default"
    currency: str = "CNY"
    # How long a dealer's tier (read from identity) is trusted.
    tier_cache_seconds: float = 60.0
