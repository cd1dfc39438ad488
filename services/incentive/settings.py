"""The incentive service's settings (QUDAO_INCENTIVE_*; options
QUDAO_INCENTIVE_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class IncentiveSettings(ServiceSettings):
    process: ClassVar[str] = "incentive"

    # Commission rate (basis points) where no rule says otherwise.
    commission_rate_bps: int = 200
