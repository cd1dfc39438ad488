"""Receipts and returns on in-memory fakes. A receipt records what arrived once: short,
damaged and over-delivered quantities become discrepancies, what did not arrive comes
off the dealer's stock, the order completes when every shipped unit is counted, and a
count far beyond the shipment is refused naming the field. A return never exceeds what
the dealer received of the batch minus what is returned or claimed already; serials
must have been shipped to the dealer; the ERP confirms what came back. Another dealer's
shipment or return is NOT_FOUND."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.order.domain import ingest as rules
from services.order.domain.fulfilment import (
    DAMAGE,
    OPEN,
    OVERAGE,
    RESHIP,
    RESOLVED,
    SHORTAGE,
    DiscrepancyQuery,
    ReceiptLineInput,
)
from services.order.domain.ingest import Mode, ShipLine, ShipmentIn
from services.order.domain.inventory import StockKey
from services.order.domain.orders import OrderStatus
from services.order.domain.returns import (
    ReceivedLine,
    ReturnLineInput,
    ReturnQuery,
    ReturnRequest,
    ReturnStatus,
)
from services.order.usecases import fulfilment, ingest, returns
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.order import RECEIPT_CONFIRMED, RETURN_RECEIVED, RETURN_REQUESTED
from shared.pagination import PageRequest
from shared.testing import FakeClock, FakeScopes, SequentialIds
from tests.service.order.fakes import FakeOrderUnitOfWork

D1 = Principal(subject="user:d1", roles=frozenset({"dealer_admin"}), dealer_id="d1")
D2 = Principal(subject="user:d2", roles=frozenset({"dealer_admin"}), dealer_id="d2")
HQ = Principal(subject="user:cs", roles=frozenset({"customer_service"}))
ERP = Principal(subject="user:erp", roles=frozenset({"erp"}))
GTIN, SERIAL_GTIN = "06901234567892", "06901234567809"
COMPANY = "default"


class World:
    def __init__(self) -> None:
        self.uow = FakeOrderUnitOfWork()
        self.clock = FakeClock(datetime(2026, 11, 20, tzinfo=UTC))
        self.ids = SequentialIds("r")
        self.scopes = FakeScopes()
        self.scopes.allow(D1, ["d1"])
        self.scopes.allow(D2, ["d2"])
        for who in (HQ, ERP):
            self.scopes.allow(who, all_dealers=True)
        self.uow.put_product("P-1", GTIN)
        self.uow.put_product("P-S", SERIAL_GTIN, serial_tracked=True)
        self.uow.put_order("o1", "d1", OrderStatus.APPROVED, ("P-1", GTIN, 10, 1_000),
                           ("P-S", SERIAL_GTIN, 2, 5_000))

    async def ship(self, sid: str, *lines: ShipLine) -> None:
        shipment = ShipmentIn(sid, "d1", COMPANY, "2026-11-18", "SF", "W1",
                              rules.fingerprint(sid), list(lines))
        results = await ingest.record_shipments([shipment], Mode.ALL_OR_NOTHING, who=ERP,
                                                uow=self.uow, clock=self.clock)
        assert {r.outcome for r in results} == {rules.Outcome.ACCEPTED}, results

    def common(self, who: Principal) -> dict:
        return dict(who=who, uow=self.uow, clock=self.clock, scopes=self.scopes)


def line(sid: str, no: int, order_line: int, code: str, quantity: int,
         serials: tuple[str, ...] = ()) -> ShipLine:
    return ShipLine(sid, "d1", no, "o1", order_line, code, "", "B1", "2028-01-31", "",
                    serials, quantity)


@pytest.fixture
async def world() -> World:
    world = World()
    await world.ship("S1", line("S1", 1, 1, "P-1", 10), line("S1", 2, 2, "P-S", 2, ("A", "B")))
    return world


def stock(world: World, code: str = "P-1") -> tuple[int, int]:
    position = world.uow.stock.positions[StockKey("d1", code, "B1")]
    return position.received, position.returned


async def test_a_receipt_raises_discrepancies_and_takes_what_never_arrived_off_stock(world):
    receipt = await fulfilment.confirm_receipt(
        "S1", [ReceiptLineInput(1, 7, 2, "box crushed")], ids=world.ids,
        **world.common(D1))
    assert sorted((d.kind, d.quantity) for d in receipt.discrepancies) == [
        (SHORTAGE, 1), (DAMAGE, 2)]
    assert receipt.lines[0].quantity_short == 1
    assert stock(world) == (7, 0)
    order = world.uow.orders.rows["o1"]
    assert order.line(1).quantity_received == 7 and order.line(1).quantity_receipted == 10
    assert order.status == OrderStatus.COMPLETED  # everything shipped and counted
    assert world.uow.shipments.rows["S1"].received
    assert len(world.uow.published_of(RECEIPT_CONFIRMED)) == 1
    with pytest.raises(FailedPrecondition):
        await fulfilment.confirm_receipt("S1", [], ids=world.ids, **world.common(D1))


async def test_an_over_delivery_is_a_discrepancy_and_an_impossible_count_is_refused(world):
    with pytest.raises(InvalidArgument) as caught:
        await fulfilment.confirm_receipt("S1", [ReceiptLineInput(1, 21)], ids=world.ids,
                                         **world.common(D1))
    assert caught.value.violations[0].field == "lines[0].quantity_received"
    assert world.uow.receipts.rows == {} and stock(world) == (10, 0)
    receipt = await fulfilment.confirm_receipt("S1", [ReceiptLineInput(1, 12)],
                                               ids=world.ids, **world.common(D1))
    assert [(d.kind, d.quantity) for d in receipt.discrepancies] == [(OVERAGE, 2)]
    assert stock(world) == (10, 0)


async def test_a_reship_gives_the_short_quantity_back_to_the_order_line(world):
    receipt = await fulfilment.confirm_receipt("S1", [ReceiptLineInput(1, 6)], ids=world.ids,
                                               **world.common(D1))
    [short] = receipt.discrepancies
    with pytest.raises(PermissionDenied):
        await fulfilment.resolve_discrepancy(short.id, RESHIP, "", **world.common(D1))
    resolved = await fulfilment.resolve_discrepancy(short.id, RESHIP, "sending again",
                                                    **world.common(HQ))
    assert resolved.status == RESOLVED and resolved.resolved_by == HQ.subject
    assert world.uow.orders.rows["o1"].line(1).quantity_shipped == 6
    assert world.uow.orders.rows["o1"].status == OrderStatus.PARTIALLY_SHIPPED
    with pytest.raises(FailedPrecondition):
        await fulfilment.resolve_discrepancy(short.id, RESHIP, "", **world.common(HQ))


async def test_another_dealers_shipment_is_not_found(world):
    with pytest.raises(NotFound):
        await fulfilment.confirm_receipt("S1", [], ids=world.ids, **world.common(D2))
    with pytest.raises(NotFound):
        await fulfilment.get_shipment("S1", who=D2, uow=world.uow, scopes=world.scopes)
    await fulfilment.confirm_receipt("S1", [ReceiptLineInput(1, 9)], ids=world.ids,
                                     **world.common(D1))
    page = await fulfilment.list_discrepancies(DiscrepancyQuery(status=OPEN), PageRequest(),
                                               who=D2, uow=world.uow, scopes=world.scopes)
    assert page.items == []


def request(*lines: ReturnLineInput, ref: str = "") -> ReturnRequest:
    return ReturnRequest("d1", COMPANY, "near expiry", ref, list(lines))


async def ask(world: World, *lines: ReturnLineInput, ref: str = "", who=D1):
    return await returns.request_return(request(*lines, ref=ref), ids=world.ids,
                                        **world.common(who))


async def test_a_return_never_exceeds_what_was_received_minus_what_is_claimed(world):
    await fulfilment.confirm_receipt("S1", [ReceiptLineInput(1, 8)], ids=world.ids,
                                     **world.common(D1))
    first = await ask(world, ReturnLineInput("P-1", "B1", (), 5, "S1"))
    assert first.status == ReturnStatus.REQUESTED and first.lines[0].gtin == GTIN
    with pytest.raises(InvalidArgument) as caught:
        await ask(world, ReturnLineInput("P-1", "B1", (), 4))
    assert caught.value.violations[0].field == "lines[0].quantity"
    third = await ask(world, ReturnLineInput("P-1", "B1", (), 3))
    assert third.lines[0].quantity_requested == 3
    assert len(world.uow.published_of(RETURN_REQUESTED)) == 2


async def test_serials_must_have_been_shipped_and_not_returned_already(world):
    with pytest.raises(InvalidArgument):
        await ask(world, ReturnLineInput("P-S", "B1", ("Z",), 1))
    await ask(world, ReturnLineInput("P-S", "B1", ("A",), 1))
    with pytest.raises(InvalidArgument):
        await ask(world, ReturnLineInput("P-S", "B1", ("A",), 1))


async def test_a_request_id_given_again_answers_the_first_return(world):
    first = await ask(world, ReturnLineInput("P-1", "B1", (), 2), ref="RMA-1")
    again = await ask(world, ReturnLineInput("P-1", "B1", (), 9), ref="RMA-1")
    assert again.id == first.id and len(world.uow.returns.rows) == 1


async def test_the_erp_confirms_what_came_back_and_the_order_line_counts_it(world):
    asked = await ask(world, ReturnLineInput("P-1", "B1", (), 4, "S1"))
    with pytest.raises(FailedPrecondition):
        await returns.confirm_return_received(asked.id, "2026-11-25", [],
                                              **world.common(ERP))
    await returns.decide_return(asked.id, True, "ok", **world.common(HQ))
    with pytest.raises(InvalidArgument):
        await returns.confirm_return_received(asked.id, "2026-11-25",
                                              [ReceivedLine(1, 5)], **world.common(ERP))
    with pytest.raises(PermissionDenied):
        await returns.confirm_return_received(asked.id, "2026-11-25", [],
                                              **world.common(HQ))
    received = await returns.confirm_return_received(
        asked.id, "2026-11-25", [ReceivedLine(1, 3)], **world.common(ERP))
    assert received.status == ReturnStatus.RECEIVED and received.received_on == "2026-11-25"
    assert stock(world) == (10, 3)
    assert world.uow.orders.rows["o1"].line(1).quantity_returned == 3
    assert world.uow.published_of(RETURN_RECEIVED)[0].product_return.lines[0] \
        .quantity_received == 3


async def test_another_dealers_return_is_not_found_and_not_listed(world):
    asked = await ask(world, ReturnLineInput("P-1", "B1", (), 1))
    with pytest.raises(NotFound):
        await returns.get_return(asked.id, who=D2, uow=world.uow, scopes=world.scopes)
    with pytest.raises(NotFound):
        await ask(world, ReturnLineInput("P-1", "B1", (), 1), who=D2)
    listed = await returns.list_returns(ReturnQuery(), PageRequest(), who=D2, uow=world.uow,
                                        scopes=world.scopes)
    assert listed.items == []
