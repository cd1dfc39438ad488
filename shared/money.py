"""Money as integer minor units (fen) with an explicit currency; rates in basis points."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CURRENCY = "CNY"


@dataclass(frozen=True, order=True)
class Money:
    amount_minor: int
    currency: str = DEFAULT_CURRENCY

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount_minor * quantity, self.currency)

    def at_rate_bps(self, rate_bps: int) -> Money:
        """This amount times a rate in basis points, rounded half away from zero."""
        product = self.amount_minor * rate_bps
        sign = -1 if product < 0 else 1
        return Money(sign * ((abs(product) + 5000) // 10000), self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(0, currency)
