"""Commission rules. Pure Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from shared.money import Money

DEFAULT_COMMISSION_RATE_BPS = 200


@dataclass(frozen=True)
class CommissionRule:
    rate_bps: int = DEFAULT_COMMISSION_RATE_BPS

    def __post_init__(self) -> None:
        if not 0 <= self.rate_bps <= 10_000:
            raise ValueError(f"commission rate must be 0..10000 bps, got {self.rate_bps}")

    def commission_on(self, base: Money) -> Money:
        return base.at_rate_bps(self.rate_bps)
