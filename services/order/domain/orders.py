"""Order rules: pricing lines from the catalog, validating quantities, and deriving an
order's status from its lines. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shared.errors import FieldViolation, collect
from shared.money import Money

MAX_LINES = 500
MAX_QUANTITY = 10_000_000


class OrderStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    gtin: str
    product_line: str
    list_price: Money


@dataclass(frozen=True)
class LineInput:
    product_code: str
    quantity: int


@dataclass(frozen=True)
class PricedLine:
    line_no: int
    product_code: str
    gtin: str
    product_line: str
    quantity: int
    unit_price: Money

    @property
    def amount(self) -> Money:
        return self.unit_price.times(self.quantity)


def price_lines(lines: list[LineInput], catalog: dict[str, CatalogEntry]) -> list[PricedLine]:
    """Price every line from the catalog, or raise one error naming every bad field."""
    violations: list[FieldViolation] = []
    if not lines:
        violations.append(FieldViolation("lines", "an order needs at least one line"))
    if len(lines) > MAX_LINES:
        violations.append(FieldViolation("lines", f"at most {MAX_LINES} lines per order"))
    seen: dict[str, int] = {}
    priced: list[PricedLine] = []
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        code = line.product_code.strip()
        if not code:
            violations.append(FieldViolation(f"{where}.product_code", "is required"))
            continue
        if code in seen:
            violations.append(FieldViolation(
                f"{where}.product_code", f"{code} already ordered on lines[{seen[code]}]"))
            continue
        seen[code] = index
        if line.quantity <= 0:
            violations.append(FieldViolation(f"{where}.quantity", "must be a positive integer"))
        elif line.quantity > MAX_QUANTITY:
            violations.append(FieldViolation(f"{where}.quantity",
                                             f"must be at most {MAX_QUANTITY}"))
        entry = catalog.get(code)
        if entry is None:
            violations.append(FieldViolation(f"{where}.product_code", f"unknown product {code}"))
            continue
        priced.append(PricedLine(
            line_no=index + 1,
            product_code=code,
            gtin=entry.gtin,
            product_line=entry.product_line,
            quantity=line.quantity,
            unit_price=entry.list_price,
        ))
    collect(violations)
    currencies = {line.unit_price.currency for line in priced}
    if len(currencies) > 1:
        collect([FieldViolation("lines", f"products are priced in several currencies: "
                                         f"{sorted(currencies)}")])
    return priced


def order_total(lines: list[PricedLine]) -> Money:
    total = Money.zero(lines[0].unit_price.currency)
    for line in lines:
        total = total + line.amount
    return total


@dataclass(frozen=True)
class LineQuantities:
    ordered: int
    shipped: int
    closed: int


def derive_status(decision: OrderStatus, lines: list[LineQuantities]) -> OrderStatus:
    """An order's status from its approval decision and its lines' quantities."""
    if decision in (OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.CANCELLED):
        return decision
    shipped = sum(line.shipped for line in lines)
    if shipped == 0:
        return OrderStatus.APPROVED
    if all(line.shipped + line.closed >= line.ordered for line in lines):
        return OrderStatus.SHIPPED
    return OrderStatus.PARTIALLY_SHIPPED
