"""The order service's pure rules: pricing, status, credit, closure, ERP ingest checks
and modes, statements, overdue amounts and return limits. No I/O."""

from __future__ import annotations

import pytest

from services.order.domain import ingest as rules
from services.order.domain.ingest import LineResult, Mode, Outcome, ShipLine, ShipmentCheck
from services.order.domain.orders import (
    CatalogEntry,
    LineInput,
    LineQuantities,
    OrderStatus,
    Stage,
    cancellable,
    closable_quantity,
    credit_check,
    derive_status,
    first_stage,
    order_total,
    price_lines,
)
from services.order.domain.returns import BatchStock, ReturnLineInput, check_return_lines
from services.order.domain.statements import DueItem, Entry, LineKind, compute_statement, overdue
from shared.errors import InvalidArgument
from shared.money import Money

CATALOG = {code: CatalogEntry(code, f"0{n:013d}", "A", Money(price))
           for n, (code, price) in enumerate((("A", 1000), ("B", 2500)), start=1)}


def test_price_lines_use_the_price_list_and_name_every_bad_line():
    priced = price_lines([LineInput("A", 2), LineInput("B", 1, Money(2500))], CATALOG,
                         {"A": Money(900)})
    assert [(p.unit_price.amount_minor, p.amount.amount_minor) for p in priced] == [
        (900, 1800), (2500, 2500)]
    assert order_total(priced) == Money(4300)
    with pytest.raises(InvalidArgument) as error:
        price_lines([LineInput("A", -1), LineInput("B", 0), LineInput("A", 1),
                     LineInput("X", 1)], CATALOG)
    assert [v.field for v in error.value.violations] == [
        "lines[0].quantity", "lines[1].quantity", "lines[2].product_code",
        "lines[3].product_code"]
    with pytest.raises(InvalidArgument) as error:
        price_lines([LineInput("A", 1, Money(1000))], CATALOG, {"A": Money(900)})
    assert error.value.violations[0].field == "lines[0].expected_unit_price"


@pytest.mark.parametrize(("decision", "lines", "status"), [
    (OrderStatus.SUBMITTED, [LineQuantities(5, 0, 0)], OrderStatus.SUBMITTED),
    (OrderStatus.CANCELLED, [LineQuantities(5, 0, 0)], OrderStatus.CANCELLED),
    (OrderStatus.APPROVED, [LineQuantities(5, 0, 0)], OrderStatus.APPROVED),
    (OrderStatus.APPROVED, [LineQuantities(5, 2, 0)], OrderStatus.PARTIALLY_SHIPPED),
    (OrderStatus.APPROVED, [LineQuantities(5, 3, 2)], OrderStatus.SHIPPED),
    (OrderStatus.APPROVED, [LineQuantities(5, 3, 2, 3)], OrderStatus.COMPLETED),
    (OrderStatus.APPROVED, [LineQuantities(5, 0, 5)], OrderStatus.COMPLETED),
    (OrderStatus.APPROVED, [LineQuantities(5, 5, 0, 5), LineQuantities(2, 1, 0, 1)],
     OrderStatus.PARTIALLY_SHIPPED),
])
def test_status_is_derived_from_the_lines(decision, lines, status):
    assert derive_status(decision, lines) == status


def test_credit_check_routes_to_the_channel_manager_over_the_limit():
    passing = credit_check(credit_limit=1000, outstanding=300, open_orders=200, order_amount=500)
    assert passing.passed and first_stage(passing) == Stage.NONE
    failing = credit_check(credit_limit=1000, outstanding=300, open_orders=200, order_amount=501)
    assert not failing.passed and first_stage(failing) == Stage.CHANNEL_MANAGER


def test_cancel_only_while_nothing_shipped_and_close_only_the_remainder():
    assert cancellable(OrderStatus.APPROVED, [LineQuantities(5, 0, 0)]) == ""
    assert "shipped" in cancellable(OrderStatus.APPROVED, [LineQuantities(5, 1, 0)])
    assert "rejected" in cancellable(OrderStatus.REJECTED, [LineQuantities(5, 0, 0)])
    assert closable_quantity(10, 6, 1, 0) == 3
    assert closable_quantity(10, 6, 1, 2) == 2
    for ordered, shipped, closed, requested, field in ((10, 6, 1, 4, "quantity"),
                                                       (10, 6, 1, -1, "quantity"),
                                                       (5, 5, 0, 0, "line_no")):
        with pytest.raises(InvalidArgument) as error:
            closable_quantity(ordered, shipped, closed, requested)
        assert error.value.violations[0].field == field


def _line(number: int, quantity: int, *, order: str = "O1", dealer: str = "D1",
          code: str = "A", serials: tuple[str, ...] = ()) -> ShipLine:
    return ShipLine("S1", dealer, number, order, 1, code, "", "B1", "2028-01-31", "", serials,
                    quantity)


def _check() -> ShipmentCheck:
    state = rules.OrderLineState("O1", 1, "D1", True, "A", CATALOG["A"].gtin, 10, 4, 1)
    return ShipmentCheck({("O1", 1): state}, {"O1"}, {"A": CATALOG["A"].gtin},
                         {CATALOG["A"].gtin: "A"})


def test_shipment_lines_are_checked_one_by_one():
    check = _check()
    assert check.check(_line(1, 3)) is None
    assert check.check(_line(2, 3))[0] == rules.OVER_SHIPPED  # 5 remained, 3 already taken
    assert check.check(_line(3, 0))[0] == rules.INVALID_QUANTITY
    assert check.check(_line(4, 1, order="O9"))[0] == rules.UNKNOWN_ORDER
    assert check.check(_line(5, 1, dealer="D2"))[0] == rules.DEALER_MISMATCH
    assert check.check(_line(6, 1, code="Z"))[0] == rules.UNKNOWN_PRODUCT
    assert check.check(_line(7, 2, serials=("X1",)))[0] == rules.SERIAL_COUNT
    check.release(_line(1, 3))
    assert check.check(_line(8, 5)) is None


def test_line_content_hash_tells_duplicates_from_conflicts():
    assert _line(1, 3).content_hash == _line(1, 3).content_hash
    assert _line(1, 3).content_hash != _line(1, 4).content_hash


def test_modes_decide_what_is_stored():
    def results():
        return [LineResult("S1", 1, Outcome.ACCEPTED), LineResult("S2", 1, Outcome.ACCEPTED),
                LineResult("S2", 2, Outcome.REJECTED, rules.OVER_SHIPPED),
                LineResult("S3", 1, Outcome.DUPLICATE)]

    strict = results()
    assert rules.apply_mode(strict, Mode.ALL_OR_NOTHING) == set()
    assert [r.outcome for r in strict] == [Outcome.NOT_APPLIED, Outcome.NOT_APPLIED,
                                           Outcome.REJECTED, Outcome.DUPLICATE]
    lenient = results()
    assert rules.apply_mode(lenient, Mode.KEEP_VALID) == {"S1"}
    assert rules.summarize(lenient) == {"accepted": 1, "duplicate": 1, "rejected": 1,
                                        "not_applied": 1}
    assert rules.mode_of(0) == Mode.ALL_OR_NOTHING


def test_statement_opening_running_balance_and_informational_lines():
    entries = [
        Entry(LineKind.INVOICE, "I0", "2026-09-30", 10_000, "old invoice"),
        Entry(LineKind.ORDER, "O1", "2026-10-01", 99_999, "order"),
        Entry(LineKind.INVOICE, "I1", "2026-10-05", 5_000, "invoice"),
        Entry(LineKind.PAYMENT, "P1", "2026-10-06", 8_000, "payment"),
        Entry(LineKind.REBATE_CREDIT, "R1", "2026-10-31", 1_000, "rebate"),
        Entry(LineKind.INVOICE, "I2", "2026-11-01", 7_000, "next month"),
    ]
    statement = compute_statement(entries, "2026-10-01", "2026-10-31")
    assert statement.opening == 10_000
    assert [(line.entry.ref_id, line.balance) for line in statement.lines] == [
        ("O1", 10_000), ("I1", 15_000), ("P1", 7_000), ("R1", 6_000)]
    assert (statement.total_debit, statement.total_credit, statement.closing) == (
        5_000, 9_000, 6_000)


def test_overdue_settles_the_oldest_invoices_first():
    invoices = [DueItem("2026-10-01", 100), DueItem("2026-11-01", 50),
                DueItem("2026-12-31", 70)]
    assert overdue(invoices, credits_total=120, today="2026-11-22") == 30
    assert overdue(invoices, credits_total=0, today="2026-11-22") == 150


def test_returns_never_exceed_what_the_dealer_holds_of_the_batch():
    stock = {("A", "B1"): BatchStock(received=5, claimed=2,
                                     shipped_serials=frozenset({"S1", "S2", "S3"}),
                                     claimed_serials=frozenset({"S3"}), serial_tracked=False)}
    assert check_return_lines([ReturnLineInput("A", "B1", (), 3)], stock) == []
    fields = [v.field for v in check_return_lines([
        ReturnLineInput("A", "B1", (), 2), ReturnLineInput("A", "B1", (), 2),
        ReturnLineInput("A", "B9", (), 1), ReturnLineInput("A", "B1", (), 0),
        ReturnLineInput("A", "B1", ("S4",), 1), ReturnLineInput("A", "B1", ("S3",), 1)],
        stock)]
    assert fields == ["lines[1].quantity", "lines[2].batch", "lines[3].quantity",
                      "lines[4].serials", "lines[5].serials"]
