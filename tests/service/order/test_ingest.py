"""ERP ingest on in-memory fakes: a shipment, invoice or payment pushed twice is recorded
once (DUPLICATE), changed content is refused, ALL_OR_NOTHING and KEEP_VALID store what
they promise, an order line is never shipped beyond what remains, a credit note needs a
received return, only the ERP may push, and a stream keeps what it committed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.order.domain import ingest as rules
from services.order.domain.accounts import CREDIT_NOTE, INVOICE
from services.order.domain.ingest import (
    AllocationIn,
    InvoiceIn,
    InvoiceLineIn,
    Mode,
    Outcome,
    PaymentIn,
    ShipLine,
    ShipmentBatch,
    ShipmentIn,
)
from services.order.domain.inventory import StockKey
from services.order.domain.orders import OrderStatus
from services.order.domain.returns import ProductReturn, ReturnStatus
from services.order.usecases.ingest import (
    record_invoices,
    record_payments,
    record_shipments,
    stream_shipments,
)
from shared.context import Principal
from shared.errors import PermissionDenied
from shared.events.order import INVOICE_RECORDED, PAYMENT_RECORDED, SHIPMENT_RECORDED
from shared.testing import FakeClock
from tests.service.order.fakes import FakeOrderUnitOfWork

ERP = Principal(subject="user:erp", roles=frozenset({"erp"}))
FINANCE = Principal(subject="user:finance", roles=frozenset({"finance"}))
COMPANY = "default"
GTIN = "06901234567892"


@pytest.fixture
def world():
    uow = FakeOrderUnitOfWork()
    uow.put_product("P-1", GTIN)
    uow.put_order("o1", "d1", OrderStatus.APPROVED, ("P-1", GTIN, 10, 1_000))
    uow.put_order("o2", "d2", OrderStatus.SUBMITTED, ("P-1", GTIN, 5, 1_000))
    return uow, FakeClock(datetime(2026, 11, 20, tzinfo=UTC))


def shipment(sid: str, *lines: tuple[int, str, int, int], dealer: str = "d1",
             carrier: str = "SF") -> ShipmentIn:
    """Lines as (line no, order id, order line no, quantity) of product P-1, batch B1."""
    return ShipmentIn(
        sid, dealer, COMPANY, "2026-11-18", carrier, "W1",
        rules.fingerprint(dealer, COMPANY, "2026-11-18", carrier, "W1"),
        [ShipLine(sid, dealer, no, order, order_line, "P-1", "", "B1", "2028-01-31", "", (),
                  quantity) for no, order, order_line, quantity in lines])


async def ship(world, *shipments: ShipmentIn, mode: Mode = Mode.ALL_OR_NOTHING):
    uow, clock = world
    return await record_shipments(list(shipments), mode, who=ERP, uow=uow, clock=clock)


def shipped(uow: FakeOrderUnitOfWork) -> int:
    return uow.orders.rows["o1"].line(1).quantity_shipped


def outcomes(results) -> list[tuple[str, int, Outcome]]:
    return [(r.record_id, r.line_no, r.outcome) for r in results]


async def test_the_same_shipment_pushed_twice_is_recorded_once(world):
    uow, _ = world
    first = await ship(world, shipment("S1", (1, "o1", 1, 4)))
    again = await ship(world, shipment("S1", (1, "o1", 1, 4)))
    assert outcomes(first) == [("S1", 1, Outcome.ACCEPTED)]
    assert outcomes(again) == [("S1", 1, Outcome.DUPLICATE)]
    assert shipped(uow) == 4
    assert uow.stock.positions[StockKey("d1", "P-1", "B1")].received == 4
    [event] = uow.published_of(SHIPMENT_RECORDED)
    assert event.shipment.lines[0].gtin == GTIN
    assert event.shipment.lines[0].product_line == "A系列"
    assert uow.orders.rows["o1"].status == OrderStatus.PARTIALLY_SHIPPED


async def test_a_repush_with_changed_content_is_refused_and_the_first_stands(world):
    uow, _ = world
    await ship(world, shipment("S1", (1, "o1", 1, 4)))
    line_changed = await ship(world, shipment("S1", (1, "o1", 1, 5)))
    header_changed = await ship(world, shipment("S1", (1, "o1", 1, 4), carrier="EMS"))
    assert [r.reason_code for r in line_changed + header_changed] == [
        rules.CONFLICTING_REPUSH, rules.CONFLICTING_REPUSH]
    assert shipped(uow) == 4


async def test_all_or_nothing_stores_nothing_when_one_line_fails(world):
    uow, _ = world
    results = await ship(world, shipment("S1", (1, "o1", 1, 4)),
                         shipment("S2", (1, "o2", 1, 1), dealer="d2"))
    assert outcomes(results) == [("S1", 1, Outcome.NOT_APPLIED),
                                 ("S2", 1, Outcome.REJECTED)]
    assert results[1].reason_code == rules.ORDER_NOT_APPROVED
    assert uow.shipments.rows == {} and uow.published == []


async def test_keep_valid_stores_the_shipments_without_a_rejected_line(world):
    uow, _ = world
    results = await ship(world, shipment("S1", (1, "o1", 1, 4)),
                         shipment("S2", (1, "o2", 1, 1), dealer="d2"), mode=Mode.KEEP_VALID)
    assert outcomes(results)[0] == ("S1", 1, Outcome.ACCEPTED)
    assert set(uow.shipments.rows) == {"S1"}


async def test_two_lines_together_cannot_ship_more_than_the_order_line_has_left(world):
    uow, _ = world
    await ship(world, shipment("S1", (1, "o1", 1, 6)))
    results = await ship(world, shipment("S2", (1, "o1", 1, 3), (2, "o1", 1, 2)))
    assert results[1].reason_code == rules.OVER_SHIPPED
    assert "only 1 of 10 remain" in results[1].message
    assert shipped(uow) == 6


async def test_only_the_erp_may_push(world):
    uow, clock = world
    with pytest.raises(PermissionDenied):
        await record_shipments([shipment("S1", (1, "o1", 1, 1))], Mode.ALL_OR_NOTHING,
                               who=FINANCE, uow=uow, clock=clock)
    with pytest.raises(PermissionDenied):
        await record_payments([], Mode.ALL_OR_NOTHING, who=FINANCE, uow=uow, clock=clock)


async def test_a_broken_stream_keeps_the_messages_it_committed(world):
    uow, clock = world

    async def messages():
        yield ShipmentBatch([shipment("S1", (1, "o1", 1, 2))], Mode.ALL_OR_NOTHING)
        yield ShipmentBatch([shipment("S2", (1, "o1", 1, 2))], Mode.ALL_OR_NOTHING)
        raise ConnectionError("the ERP went away")

    with pytest.raises(ConnectionError):
        await stream_shipments(messages(), who=ERP, uow=uow, clock=clock)
    assert set(uow.shipments.rows) == {"S1", "S2"}

    async def again():
        yield ShipmentBatch([shipment("S1", (1, "o1", 1, 2)), shipment("S2", (1, "o1", 1, 2))],
                            Mode.ALL_OR_NOTHING)

    report = await stream_shipments(again(), who=ERP, uow=uow, clock=clock)
    assert report.committed == 1
    assert report.counts == {"accepted": 0, "duplicate": 2, "rejected": 0, "not_applied": 0}
    assert report.problems == []
    assert shipped(uow) == 4


async def test_the_shipment_event_carries_serials_and_production_dates_when_pushed(world):
    uow, _ = world
    plain = shipment("S1", (1, "o1", 1, 2), (2, "o1", 1, 1))
    plain.lines[0] = replace(plain.lines[0], serials=("SN1", "SN2"), production_date="2026-10-01",
                             content_hash="")
    await ship(world, plain)
    [event] = uow.published_of(SHIPMENT_RECORDED)
    first, second = event.shipment.lines
    assert (list(first.serials), first.production_date) == (["SN1", "SN2"], "2026-10-01")
    assert (list(second.serials), second.production_date) == ([], "")
    assert (first.gtin, second.product_line) == (GTIN, "A系列")


async def test_a_stream_reports_its_problems_and_counts(world):
    uow, clock = world

    async def messages():
        yield ShipmentBatch([shipment("S1", (1, "o1", 1, 2))], Mode.ALL_OR_NOTHING)
        yield ShipmentBatch([shipment("S2", (1, "o1", 1, 2), (2, "o2", 1, 1))],
                            Mode.ALL_OR_NOTHING)
        yield ShipmentBatch([shipment("S1", (1, "o1", 1, 2))], Mode.ALL_OR_NOTHING)

    report = await stream_shipments(messages(), who=ERP, uow=uow, clock=clock)
    assert report.committed == 3
    assert report.counts == {"accepted": 1, "duplicate": 1, "rejected": 1, "not_applied": 1}
    assert [(p.record_id, p.line_no, p.outcome, p.reason_code) for p in report.problems] == [
        ("S2", 1, Outcome.NOT_APPLIED, ""), ("S2", 2, Outcome.REJECTED, rules.DEALER_MISMATCH)]
    assert set(uow.shipments.rows) == {"S1"} and shipped(uow) == 2


def invoice(iid: str, amount: int, *, kind: int = INVOICE, return_id: str = "",
            shipment_id: str = "S1", due_on: str = "") -> InvoiceIn:
    lines = (InvoiceLineIn(1, shipment_id, 1, "P-1", 2, amount, "CNY"),) if kind == INVOICE \
        else ()
    return InvoiceIn(iid, kind, "d1", COMPANY, "0001", "2026-11-19", due_on, amount, 0, "CNY",
                     "CNY", return_id, lines, rules.fingerprint(iid, amount, kind, return_id))


async def test_an_invoice_pushed_twice_is_owed_once_and_counts_toward_its_order_line(world):
    uow, clock = world
    await ship(world, shipment("S1", (1, "o1", 1, 4)))
    for _ in range(2):
        results = await record_invoices([invoice("I1", 2_000)], Mode.ALL_OR_NOTHING,
                                        who=ERP, uow=uow, clock=clock)
    assert outcomes(results) == [("I1", 0, Outcome.DUPLICATE)]
    assert uow.accounts.running[("d1", COMPANY)][0] == 2_000
    assert uow.orders.rows["o1"].line(1).quantity_invoiced == 2
    # No due date pushed: the default payment terms from the issue date.
    assert uow.invoices.rows["I1"].due_on == "2026-12-19"
    assert len(uow.published_of(INVOICE_RECORDED)) == 1


async def test_an_invoice_for_a_shipment_of_another_dealer_is_refused(world):
    uow, clock = world
    await ship(world, shipment("S1", (1, "o1", 1, 4)))
    other = InvoiceIn("I2", INVOICE, "d2", COMPANY, "", "2026-11-19", "", 100, 0, "CNY", "",
                      "", (InvoiceLineIn(1, "S1", 1, "P-1", 1, 100, ""),), "h")
    [result] = await record_invoices([other], Mode.ALL_OR_NOTHING, who=ERP, uow=uow,
                                     clock=clock)
    assert result.reason_code == rules.DEALER_MISMATCH
    assert uow.invoices.rows == {}


async def test_a_credit_note_credits_a_received_return_only(world):
    uow, clock = world
    for return_id, status in (("r1", ReturnStatus.APPROVED), ("r2", ReturnStatus.RECEIVED)):
        uow.returns.rows[return_id] = ProductReturn(
            return_id, "d1", COMPANY, status, "broken", return_id, clock.now(), "user:d1")
    results = await record_invoices(
        [invoice("C1", 500, kind=CREDIT_NOTE, return_id="r1"),
         invoice("C2", 500, kind=CREDIT_NOTE, return_id="r2")], Mode.KEEP_VALID, who=ERP,
        uow=uow, clock=clock)
    assert outcomes(results) == [("C1", 0, Outcome.REJECTED), ("C2", 0, Outcome.ACCEPTED)]
    assert "not awaiting a credit note" in results[0].message
    assert uow.returns.rows["r2"].status == ReturnStatus.CREDITED
    assert uow.returns.rows["r2"].credit_note_invoice_id == "C2"
    assert uow.accounts.running[("d1", COMPANY)][0] == -500


def payment(pid: str, amount: int, *allocations: tuple[str, int]) -> PaymentIn:
    return PaymentIn(pid, "d1", COMPANY, "2026-11-20", amount, "CNY", "transfer", "",
                     tuple(AllocationIn(i, a, "CNY") for i, a in allocations),
                     rules.fingerprint(pid, amount, allocations))


async def test_payments_are_recorded_once_and_cannot_allocate_more_than_they_pay(world):
    uow, clock = world
    await ship(world, shipment("S1", (1, "o1", 1, 4)))
    await record_invoices([invoice("I1", 2_000)], Mode.ALL_OR_NOTHING, who=ERP, uow=uow,
                          clock=clock)
    results = await record_payments(
        [payment("P1", 1_500, ("I1", 1_500)), payment("P2", 100, ("I1", 200)),
         payment("P3", 100, ("I9", 100))], Mode.KEEP_VALID, who=ERP, uow=uow, clock=clock)
    assert [r.reason_code for r in results] == ["", rules.INVALID_QUANTITY,
                                                rules.UNKNOWN_INVOICE]
    again = await record_payments([payment("P1", 1_500, ("I1", 1_500))], Mode.ALL_OR_NOTHING,
                                  who=ERP, uow=uow, clock=clock)
    assert outcomes(again) == [("P1", 0, Outcome.DUPLICATE)]
    assert uow.accounts.running[("d1", COMPANY)][0] == 500
    assert len(uow.published_of(PAYMENT_RECORDED)) == 1
