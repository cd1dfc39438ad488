import pytest

from services.order.domain.orders import (
    CatalogEntry,
    LineInput,
    LineQuantities,
    OrderStatus,
    derive_status,
    order_total,
    price_lines,
)
from shared.errors import InvalidArgument
from shared.money import Money

CATALOG = {
    "A-1": CatalogEntry("A-1", "06901234567892", "A系列", Money(12_500)),
    "A-2": CatalogEntry("A-2", "06901234567809", "A系列", Money(800)),
}


def test_lines_are_priced_from_the_catalog():
    lines = price_lines([LineInput("A-1", 4), LineInput("A-2", 10)], CATALOG)
    assert [(line.line_no, line.amount) for line in lines] == [(1, Money(50_000)),
                                                                (2, Money(8_000))]
    assert order_total(lines) == Money(58_000)


def test_every_bad_line_is_named():
    with pytest.raises(InvalidArgument) as caught:
        price_lines([LineInput("A-1", 0), LineInput("NOPE", 1), LineInput("A-1", 2),
                     LineInput(" ", 1), LineInput("A-2", -5)], CATALOG)
    assert {v.field for v in caught.value.violations} == {
        "lines[0].quantity", "lines[1].product_code", "lines[2].product_code",
        "lines[3].product_code", "lines[4].quantity"}


def test_an_order_needs_lines():
    with pytest.raises(InvalidArgument) as caught:
        price_lines([], CATALOG)
    assert caught.value.violations[0].field == "lines"


def test_mixed_currencies_are_refused():
    catalog = {**CATALOG, "U-1": CatalogEntry("U-1", "00012345678905", "A系列", Money(1, "USD"))}
    with pytest.raises(InvalidArgument, match="currencies"):
        price_lines([LineInput("A-1", 1), LineInput("U-1", 1)], catalog)


@pytest.mark.parametrize(("decision", "lines", "expected"), [
    (OrderStatus.SUBMITTED, [LineQuantities(5, 0, 0)], OrderStatus.SUBMITTED),
    (OrderStatus.CANCELLED, [LineQuantities(5, 0, 0)], OrderStatus.CANCELLED),
    (OrderStatus.APPROVED, [LineQuantities(5, 0, 0)], OrderStatus.APPROVED),
    (OrderStatus.APPROVED, [LineQuantities(5, 2, 0)], OrderStatus.PARTIALLY_SHIPPED),
    (OrderStatus.APPROVED, [LineQuantities(5, 3, 2), LineQuantities(1, 1, 0)],
     OrderStatus.SHIPPED),
])
def test_status_is_derived_from_lines(decision, lines, expected):
    assert derive_status(decision, lines) == expected
