"""The incentive service's settings (QUDAO_INCENTIVE_*; options
QUDAO_INCENTIVE_OPTION_<NAME>)."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class IncentiveSettings(ServiceSettings):
    process: ClassVar[str] = "incentive"

    # Commission rate (basis points) on accepted sell-through where no rule applies;
    # 0: no commission without a rule.
    commission_rate_bps: int = 200
    # Days after a period ends before finance may close it (late data).
    grace_days: int = 10
    # The company credited where a program or order names none (as order's default).
    default_selling_company: str = "default"
