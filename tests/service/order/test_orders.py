"""Orders on in-memory fakes: the credit check (an order over the available credit is
held for the channel manager and finance; raising the limit or a payment makes room
again), pricing from the tier's list, a client reference submitted twice, staged
decisions and their races, cancelling, closing a line, and scope: a dealer neither sees
nor acts on another dealer's orders (NOT_FOUND, never a hint)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.order.domain.accounts import LimitChange
from services.order.domain.ingest import Mode, PaymentIn
from services.order.domain.orders import (
    LineInput,
    OrderQuery,
    OrderStatus,
    PriceItem,
    PriceList,
    Stage,
)
from services.order.usecases import accounts, ingest, orders
from services.order.usecases.orders import OrderSubmission
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.order import ORDER_APPROVED, ORDER_REJECTED, ORDER_SUBMITTED
from shared.pagination import PageRequest
from shared.testing import FakeClock, FakeScopes, SequentialIds
from tests.service.order.fakes import FakeOrderUnitOfWork

D1 = Principal(subject="user:d1", roles=frozenset({"dealer_admin"}), dealer_id="d1")
D2 = Principal(subject="user:d2", roles=frozenset({"dealer_admin"}), dealer_id="d2")
MANAGER = Principal(subject="user:cm", roles=frozenset({"channel_manager"}))
FINANCE = Principal(subject="user:fin", roles=frozenset({"finance"}))
ERP = Principal(subject="user:erp", roles=frozenset({"erp"}))
COMPANY = "default"


class Tiers:
    def __init__(self, **tiers: int) -> None:
        self.tiers = tiers

    async def tier_of(self, dealer_id: str) -> int:
        return self.tiers.get(dealer_id, 0)


class World:
    def __init__(self) -> None:
        self.uow = FakeOrderUnitOfWork()
        self.clock = FakeClock(datetime(2026, 11, 20, 9, tzinfo=UTC))
        self.scopes = FakeScopes()
        self.tiers = Tiers(d1=2)
        self.ids = SequentialIds("o")
        self.scopes.allow(D1, ["d1"])
        self.scopes.allow(D2, ["d2"])
        self.scopes.allow(MANAGER, ["d1", "d2"])
        self.scopes.allow(FINANCE, all_dealers=True)
        self.scopes.allow(ERP, all_dealers=True)
        self.uow.put_product("P-1", "06901234567892", 1_000)
        self.uow.put_product("P-2", "06901234567809", 2_500)

    async def limit(self, dealer: str, limit_minor: int) -> None:
        await accounts.set_credit_limit(LimitChange(dealer, COMPANY, limit_minor, "CNY"),
                                        who=FINANCE, uow=self.uow, scopes=self.scopes,
                                        clock=self.clock)

    async def submit(self, who: Principal, *lines: tuple[str, int], ref: str = "",
                     dealer: str = ""):
        return await orders.submit_order(
            OrderSubmission(dealer, [LineInput(code, quantity) for code, quantity in lines],
                            ref, COMPANY),
            who=who, uow=self.uow, clock=self.clock, ids=self.ids, scopes=self.scopes,
            tiers=self.tiers)

    def common(self, who: Principal) -> dict:
        return dict(who=who, uow=self.uow, clock=self.clock, scopes=self.scopes)


@pytest.fixture
def world() -> World:
    return World()


async def test_an_order_within_the_available_credit_is_approved_at_once(world):
    await world.limit("d1", 10_000)
    order = await world.submit(D1, ("P-1", 3), ("P-2", 2))
    assert order.status == OrderStatus.APPROVED and order.credit_passed
    assert order.total_minor == 8_000
    assert [a.stage for a in order.approvals] == [Stage.AUTO]
    assert world.uow.accounts.running[("d1", COMPANY)] == [0, 8_000]
    assert [e.order.id for e in world.uow.published_of(ORDER_APPROVED)] == [order.id]


async def test_an_order_over_the_available_credit_is_held_until_both_stages_approve(world):
    await world.limit("d1", 10_000)
    await world.submit(D1, ("P-1", 6))
    held = await world.submit(D1, ("P-1", 5))
    assert held.status == OrderStatus.SUBMITTED and not held.credit_passed
    assert held.awaiting_stage == Stage.CHANNEL_MANAGER
    assert (held.credit_open_orders_minor, held.credit_limit_minor) == (6_000, 10_000)
    assert len(world.uow.published_of(ORDER_APPROVED)) == 1  # the first order's only
    with pytest.raises(PermissionDenied):
        await orders.decide_order(held.id, Stage.CHANNEL_MANAGER, True, "",
                                  **world.common(FINANCE))
    first = await orders.decide_order(held.id, Stage.CHANNEL_MANAGER, True, "ok",
                                      **world.common(MANAGER))
    assert first.status == OrderStatus.SUBMITTED and first.awaiting_stage == Stage.FINANCE
    approved = await orders.decide_order(held.id, Stage.FINANCE, True, "",
                                         **world.common(FINANCE))
    assert approved.status == OrderStatus.APPROVED
    assert world.uow.published_of(ORDER_APPROVED)[-1].fully_approved


async def test_raising_the_limit_or_a_payment_makes_room_for_the_next_order(world):
    await world.limit("d1", 5_000)
    world.uow.accounts.running[("d1", COMPANY)] = [4_000, 0]  # owed from invoices
    assert (await world.submit(D1, ("P-1", 2))).status == OrderStatus.SUBMITTED
    await world.limit("d1", 20_000)
    assert (await world.submit(D1, ("P-1", 2))).status == OrderStatus.APPROVED
    # Held orders count against the credit too: 4,000 owed, 4,000 on order; 14,000 more
    # is held, after which 2,000 does not fit either (held too), until a payment of 6,000
    # arrives.
    assert (await world.submit(D1, ("P-1", 14))).status == OrderStatus.SUBMITTED
    assert (await world.submit(D1, ("P-1", 2))).status == OrderStatus.SUBMITTED
    await ingest.record_payments([PaymentIn("PAY-1", "d1", COMPANY, "2026-11-19", 6_000,
                                            "CNY", "transfer", "", (), "h")],
                                 Mode.ALL_OR_NOTHING, who=ERP, uow=world.uow,
                                 clock=world.clock)
    assert (await world.submit(D1, ("P-1", 2))).status == OrderStatus.APPROVED


async def test_a_rejected_order_gives_its_credit_back(world):
    await world.limit("d1", 1_000)
    held = await world.submit(D1, ("P-1", 3))
    assert world.uow.accounts.running[("d1", COMPANY)][1] == 3_000
    with pytest.raises(InvalidArgument):
        await orders.decide_order(held.id, Stage.CHANNEL_MANAGER, False, " ",
                                  **world.common(MANAGER))
    rejected = await orders.decide_order(held.id, Stage.CHANNEL_MANAGER, False, "too much",
                                         **world.common(MANAGER))
    assert rejected.status == OrderStatus.REJECTED and rejected.decision_reason == "too much"
    assert world.uow.accounts.running[("d1", COMPANY)][1] == 0
    assert world.uow.published_of(ORDER_REJECTED)[0].reason == "too much"
    with pytest.raises(FailedPrecondition):  # the second decider of a race
        await orders.decide_order(held.id, Stage.CHANNEL_MANAGER, True, "",
                                  **world.common(MANAGER))


async def test_the_tier_price_list_valid_today_prices_the_order(world):
    world.uow.price_lists.rows["pl"] = PriceList(
        "pl", "tier 2", 2, COMPANY, "2026-01-01", "", None, [PriceItem("P-1", 800, "CNY")])
    await world.limit("d1", 100_000)
    order = await world.submit(D1, ("P-1", 2), ("P-2", 1))
    assert [line.unit_price_minor for line in order.lines] == [800, 2_500]
    other = await world.submit(D2, ("P-1", 2))  # no tier list: the catalog price
    assert other.lines[0].unit_price_minor == 1_000


async def test_a_client_reference_submitted_again_answers_the_first_order(world):
    await world.limit("d1", 100_000)
    first = await world.submit(D1, ("P-1", 1), ref="PO-7")
    again = await world.submit(D1, ("P-2", 9), ref="PO-7")
    assert again.id == first.id and again.lines[0].product_code == "P-1"
    assert len(world.uow.orders.rows) == 1
    assert len(world.uow.published_of(ORDER_SUBMITTED)) == 1
    assert world.uow.accounts.running[("d1", COMPANY)][1] == 1_000


async def test_bad_lines_are_named_and_store_nothing(world):
    with pytest.raises(InvalidArgument) as caught:
        await world.submit(D1, ("P-9", 1), ("P-1", 0))
    assert {v.field for v in caught.value.violations} >= {"lines[0].product_code",
                                                          "lines[1].quantity"}
    assert world.uow.orders.rows == {} and world.uow.published == []


async def test_a_dealer_neither_sees_nor_acts_on_another_dealers_orders(world):
    await world.limit("d1", 100_000)
    order = await world.submit(D1, ("P-1", 1))
    with pytest.raises(NotFound):
        await world.submit(D2, ("P-1", 1), dealer="d1")
    with pytest.raises(NotFound):
        await orders.get_order(order.id, who=D2, uow=world.uow, scopes=world.scopes)
    with pytest.raises(NotFound):
        await orders.cancel_order(order.id, "mine now", **world.common(D2))
    page = await orders.list_orders(OrderQuery(), PageRequest(), who=D2, uow=world.uow,
                                    scopes=world.scopes)
    assert page.items == []
    named = await orders.list_orders(OrderQuery(dealer_id="d1"), PageRequest(), who=D2,
                                     uow=world.uow, scopes=world.scopes)
    assert named.items == [] and named.total == 0
    mine = await orders.list_orders(OrderQuery(), PageRequest(), who=D1, uow=world.uow,
                                    scopes=world.scopes)
    assert [o.id for o in mine.items] == [order.id]
    assert world.uow.orders.rows[order.id].status == OrderStatus.APPROVED


async def test_cancelling_frees_the_credit_and_a_shipped_order_cannot_be_cancelled(world):
    await world.limit("d1", 100_000)
    order = await world.submit(D1, ("P-1", 4))
    cancelled = await orders.cancel_order(order.id, "changed my mind", **world.common(D1))
    assert cancelled.status == OrderStatus.CANCELLED
    assert world.uow.accounts.running[("d1", COMPANY)][1] == 0
    shipped = await world.submit(D1, ("P-1", 4))
    world.uow.orders.rows[shipped.id].lines[0].quantity_shipped = 1
    with pytest.raises(FailedPrecondition):
        await orders.cancel_order(shipped.id, "too late", **world.common(D1))


async def test_closing_a_line_takes_the_unshipped_remainder_off_the_credit(world):
    await world.limit("d1", 100_000)
    order = await world.submit(D1, ("P-1", 5))
    world.uow.orders.rows[order.id].lines[0].quantity_shipped = 2
    hq = Principal(subject="user:cs", roles=frozenset({"customer_service"}))
    world.scopes.allow(hq, all_dealers=True)
    with pytest.raises(InvalidArgument) as caught:
        await orders.close_order_line(order.id, 1, 4, "discontinued", **world.common(hq))
    assert caught.value.violations[0].field == "quantity"
    closed = await orders.close_order_line(order.id, 1, 0, "discontinued",
                                           **world.common(hq))
    assert closed.lines[0].quantity_closed == 3
    assert closed.status == OrderStatus.COMPLETED or closed.status == OrderStatus.SHIPPED
    assert world.uow.accounts.running[("d1", COMPANY)][1] == 2_000
    with pytest.raises(PermissionDenied):
        await orders.close_order_line(order.id, 1, 0, "again", **world.common(D1))
