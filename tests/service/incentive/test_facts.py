"""Facts as the other services report them, on in-memory collaborators: returns valued at
what the dealer paid for those goods, and diversions as flow reports them (found in a
rejected upload, one per product, batch and dealer shipped to)."""

from __future__ import annotations

from datetime import date

from services.incentive.domain.commission import CommissionBase, CommissionRule
from services.incentive.domain.facts import (
    Diversion,
    DiversionStatus,
    Order,
    OrderLine,
    Return,
    ReturnLine,
    ShippedLine,
)
from services.incentive.domain.tiers import Tier
from services.incentive.usecases import facts, rules
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    accept,
    configures,
    create,
    ledger,
    order_event,
    program,
    sale,
    total,
    writes,
)

FEB = date(2026, 2, 3)


async def _orders_world():
    """d1 bought A-001 twice: o1 at 10,000 a unit, o2 at 8,000; shipment S1 carried
    both (line 1 from o1, line 2 from o2), batch B1. Commission on orders: 1%."""
    deps, uow = fake_deps(rate_bps=0)
    await rules.upsert_rule(CommissionRule(name="orders", base=CommissionBase.APPROVED_ORDERS,
                                           base_rate_bps=100, valid_from=date(2026, 1, 1)),
                            who=ADMIN, **configures(deps))
    for order_id, amount in (("o1", 100_000), ("o2", 80_000)):
        await order_event(deps, Order(order_id, "d1", "default",
                                      (OrderLine(1, "A-001", "A系列", 10, amount),),
                                      date(2026, 1, 5)))
    await facts.record_product("A-002", "A系列", 50_000, uow=deps.uow())
    await facts.link_shipment("d1", [ShippedLine("S1", 1, "A-001", "B1", "o1", 1, 10),
                                     ShippedLine("S1", 2, "A-001", "B1", "o2", 1, 10)],
                              **writes(deps))
    return deps, uow


async def _returned(deps, return_id: str, *lines: ReturnLine):
    await facts.record_return(Return(return_id, "d1", "default", FEB, lines), **writes(deps))


def _return_lines(uow, return_id: str) -> tuple[int, int, int]:
    [value] = [v for k, v in ledger(uow).items() if k.unit_id == return_id]
    return value.base_minor, value.quantity, value.amount_minor


async def test_a_return_is_valued_at_the_order_lines_its_shipment_came_from():
    deps, uow = await _orders_world()
    # 15 units of S1: the first shipment line's 10 (o1, 10,000) then 5 of o2 (8,000).
    await _returned(deps, "rt1", ReturnLine(1, "A-001", 15, "S1", "B1"))
    assert _return_lines(uow, "rt1") == (-140_000, -15, -1_400)


async def test_without_a_known_shipment_a_return_is_valued_at_the_dealers_average_or_list():
    deps, uow = await _orders_world()
    await _returned(deps, "rt2", ReturnLine(1, "A-001", 2))            # average 9,000
    assert _return_lines(uow, "rt2") == (-18_000, -2, -180)
    await _returned(deps, "rt3", ReturnLine(1, "A-002", 2))            # never bought: list
    assert _return_lines(uow, "rt3") == (-100_000, -2, -1_000)
    # A return of another batch than the shipment carried is not priced by it.
    await _returned(deps, "rt4", ReturnLine(1, "A-001", 1, "S1", "B7"))
    assert _return_lines(uow, "rt4") == (-9_000, -1, -90)


async def test_a_return_received_before_its_shipment_is_known_is_revalued_when_it_is():
    deps, uow = await _orders_world()
    await _returned(deps, "rt5", ReturnLine(1, "A-001", 1, "S2", "B2"))
    assert _return_lines(uow, "rt5") == (-9_000, -1, -90)
    await facts.link_shipment("d1", [ShippedLine("S2", 1, "A-001", "B2", "o1", 1, 5)],
                              **writes(deps))
    assert _return_lines(uow, "rt5") == (-10_000, -1, -100)
    assert total(uow) == 1_000 + 800 - 100
    # The same shipment again changes nothing.
    before = len(uow.accruals.rows)
    await facts.link_shipment("d1", [ShippedLine("S2", 1, "A-001", "B2", "o1", 1, 5)],
                              **writes(deps))
    assert len(uow.accruals.rows) == before


async def _diversion_world():
    """d1 sold batch BX in u1 (January) and again in u2 (after the diversion was
    detected); d2 sold BX too. Flow then rejects another upload of d1 and reports BX as
    diverted (窜货), detected on 1 February."""
    deps, uow = fake_deps(rate_bps=200)
    for dealer_id in ("d1", "d2"):
        await uow.dealers.put(dealer(dealer_id))
    await accept(deps, "u1", "d1", [
        sale("u1", 2, "d1", "h1", 5, 50_000, date(2026, 1, 10), batch="BX",
             gtin="06901234567892"),
        sale("u1", 3, "d1", "h1", 5, 50_000, date(2026, 1, 10), batch="B1")])
    await accept(deps, "u2", "d1", [sale("u2", 2, "d1", "h1", 3, 30_000, date(2026, 2, 20),
                                         batch="BX")])
    await accept(deps, "u3", "d2", [sale("u3", 2, "d2", "h1", 4, 40_000, date(2026, 1, 15),
                                         batch="BX")])
    return deps, uow


def _flows(uow) -> dict[tuple[str, str], int]:
    return {(k.dealer_id, k.unit_id): v.base_minor for k, v in ledger(uow).items()
            if k.unit_type.value == "flow_upload"}


DIVERSION = Diversion("dv1", "rejected-upload", "d1", "A-001", "06901234567892", "BX", "h7",
                      date(2026, 1, 15), date(2026, 2, 1))


async def test_diverted_goods_never_count_whatever_upload_they_came_in():
    deps, uow = await _diversion_world()
    quarter = await create(deps, program("Q1", (Tier(1, 100),)))
    before = _flows(uow)
    assert before[("d1", "u1#0")] == 100_000
    await facts.record_diversion(DIVERSION, **writes(deps))
    after = _flows(uow)
    # u1's BX row no longer counts; u2's BX row, sold after detection, does; d2 too.
    assert after == {("d1", "u1#0"): 50_000, ("d1", "u2#0"): 30_000, ("d2", "u3#0"): 40_000}
    rebates = {k.dealer_id: v.base_minor for k, v in ledger(uow, scheme_id=quarter.id).items()}
    assert rebates == {"d1": 80_000, "d2": 40_000}
    # A repeat of the event books nothing.
    rows = len(uow.accruals.rows)
    await facts.record_diversion(DIVERSION, **writes(deps))
    assert len(uow.accruals.rows) == rows


async def test_a_diversion_without_a_product_code_matches_by_gtin():
    deps, uow = await _diversion_world()
    by_gtin = Diversion("dv2", "rejected-upload", "d1", "", "06901234567892", "BX", "",
                        None, date(2026, 2, 1))
    await facts.record_diversion(by_gtin, **writes(deps))
    assert _flows(uow)[("d1", "u1#0")] == 50_000
    other_gtin = Diversion("dv3", "rejected-upload", "d2", "", "06900000000007", "BX", "",
                           None, date(2026, 2, 1))
    await facts.record_diversion(other_gtin, **writes(deps))
    assert _flows(uow)[("d2", "u3#0")] == 40_000


async def test_a_dismissed_diversion_counts_again_and_stays_resolved():
    deps, uow = await _diversion_world()
    await facts.record_diversion(DIVERSION, **writes(deps))
    dismissed = Diversion(*[getattr(DIVERSION, f) for f in (
        "id", "upload_id", "dealer_id", "product_code", "gtin", "batch", "customer_id",
        "sold_on", "detected_on")], status=DiversionStatus.DISMISSED)
    await facts.record_diversion(dismissed, **writes(deps))
    assert _flows(uow)[("d1", "u1#0")] == 100_000
    # A late redelivery of "detected" does not reopen it.
    await facts.record_diversion(DIVERSION, **writes(deps))
    assert _flows(uow)[("d1", "u1#0")] == 100_000
    assert uow.sales.diversions["dv1"].status == DiversionStatus.DISMISSED
