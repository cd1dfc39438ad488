"""Commission from events, on in-memory collaborators: rates by customer source, product
line, overrides and validity; orders counted only once fully approved and never once
rejected or cancelled; replaced uploads and diversions reversed."""

from __future__ import annotations

from datetime import date

import pytest

from services.incentive.domain.accruals import AccrualKind
from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    CustomerSource,
    Override,
    UnregisteredPolicy,
)
from services.incentive.domain.facts import Diversion, LeadEvent
from services.incentive.usecases import accruals, facts, rules
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.incentive import ACCRUAL_RECORDED
from shared.pagination import PageRequest
from tests.service.incentive.fakes import fake_deps
from tests.service.incentive.support import (
    ADMIN,
    accept,
    ledger,
    order,
    order_event,
    register,
    sale,
    total,
)

JAN = date(2026, 1, 15)
RULE = CommissionRule(name="A系列 2026", product_line="A系列", base_rate_bps=100,
                      source_rates={CustomerSource.DEALER_SOURCED: 300,
                                    CustomerSource.HQ_LEAD: 150},
                      unregistered=UnregisteredPolicy.BASE_RATE, valid_from=date(2026, 1, 1))


async def with_rule(deps, rule=RULE):
    deps.scopes.allow(ADMIN, all_dealers=True)
    stored, _ = await rules.upsert_rule(rule, who=ADMIN, scopes=deps.scopes, uow=deps.uow(),
                                        clock=deps.clock,
                                        ids=deps.ids, policy=deps.policy)
    return stored


async def test_the_rate_follows_who_brought_the_customer():
    deps, uow = fake_deps()
    await with_rule(deps)
    await register(deps, "r-1", "d-1", "h-own", CustomerSource.DEALER_SOURCED, date(2026, 1, 2))
    await facts.record_lead_event(LeadEvent("l-1", "d-1", "h-lead", "A系列", date(2026, 1, 3),
                                            True), uow=deps.uow(), clock=deps.clock,
                                  ids=deps.ids, policy=deps.policy)
    await accept(deps, "u-1", "d-1", [
        sale("u-1", 2, "d-1", "h-own", 10, 100_000, JAN),
        sale("u-1", 3, "d-1", "h-lead", 10, 100_000, JAN),
        sale("u-1", 4, "d-1", "h-other", 10, 100_000, JAN)])
    by_source = {k.customer_source: (k.rate_bps, v.amount_minor) for k, v in ledger(uow).items()}
    assert by_source == {"dealer_sourced": (300, 3_000), "hq_lead": (150, 1_500),
                         "unregistered": (100, 1_000)}
    assert len(uow.published_of(ACCRUAL_RECORDED)) == 3


async def test_a_registration_arriving_late_reprices_the_sales_it_covers():
    deps, uow = fake_deps()
    await with_rule(deps)
    await accept(deps, "u-1", "d-1", [sale("u-1", 2, "d-1", "h-1", 1, 50_000, JAN)])
    assert total(uow) == 500
    await register(deps, "r-1", "d-1", "h-1", CustomerSource.DEALER_SOURCED, date(2026, 1, 10))
    assert total(uow) == 1_500
    # It ended before the sale: back to the base rate.
    await register(deps, "r-1", "d-1", "h-1", CustomerSource.DEALER_SOURCED,
                   ended=date(2026, 1, 12))
    assert total(uow) == 500


async def test_a_merge_carries_the_registration_to_the_customer_kept():
    """The dealer registered 中山医院 as h-1; its sales were reported under h-2, the same
    hospital entered twice. When HQ folds h-1 into h-2 the registration covers h-2 from
    the day it was approved, and those sales earn the dealer-sourced rate."""
    deps, uow = fake_deps()
    await with_rule(deps)
    await register(deps, "r-1", "d-1", "h-1", CustomerSource.DEALER_SOURCED, date(2026, 1, 10))
    await accept(deps, "u-1", "d-1", [sale("u-1", 2, "d-1", "h-2", 1, 50_000, JAN)])
    assert total(uow) == 500
    await facts.record_customer_merge("h-2", "h-1", uow=deps.uow(), clock=deps.clock,
                                      ids=deps.ids, policy=deps.policy)
    assert total(uow) == 1_500


async def test_unregistered_customers_can_earn_nothing_and_overrides_win():
    deps, uow = fake_deps()
    rule = await with_rule(deps, CommissionRule(
        name="strict", product_line="A系列", base_rate_bps=100,
        unregistered=UnregisteredPolicy.NOTHING, valid_from=date(2026, 1, 1),
        overrides=(Override(500, dealer_id="d-1", product_code="A-009"),
                   Override(250, dealer_id="d-1", source=CustomerSource.DEALER_SOURCED))))
    await register(deps, "r-1", "d-1", "h-1", CustomerSource.DEALER_SOURCED, date(2026, 1, 1))
    await accept(deps, "u-1", "d-1", [
        sale("u-1", 2, "d-1", "h-2", 1, 10_000, JAN),                   # unregistered
        sale("u-1", 3, "d-1", "h-1", 1, 10_000, JAN),                   # dealer override
        sale("u-1", 4, "d-1", "h-1", 1, 10_000, JAN, product="A-009")])  # product override
    assert sorted(k.rate_bps for k in ledger(uow)) == [250, 500]
    assert {k.scheme_id for k in ledger(uow)} == {rule.id}


async def test_transfers_replaced_uploads_and_diversions_never_count():
    deps, uow = fake_deps(rate_bps=200)
    rows = [sale("u-1", 2, "d-1", "h-1", 5, 10_000, JAN),
            sale("u-1", 3, "d-1", "", 5, 10_000, JAN, transfer="d-sub"),
            sale("u-1", 4, "d-1", "h-2", 5, 20_000, JAN, batch="B9")]
    await accept(deps, "u-1", "d-1", rows)
    assert total(uow) == 600
    await facts.record_diversion(Diversion("dv-1", "u-1", "d-1", "A-001", "", "B9", "h-2",
                                           JAN, JAN),
                                 uow=deps.uow(), clock=deps.clock, ids=deps.ids,
                                 policy=deps.policy)
    assert total(uow) == 200
    # The replacement arrives first and names what it replaces.
    await accept(deps, "u-2", "d-1", [sale("u-2", 2, "d-1", "h-1", 7, 14_000, JAN)],
                 replaces="u-1")
    assert total(uow) == 280
    # The superseded upload's late parts are stored as replaced: nothing changes.
    await accept(deps, "u-1", "d-1", [sale("u-1", 9, "d-1", "h-1", 9, 90_000, JAN, part=1)],
                 part=1, parts=2)
    assert total(uow) == 280


ORDERS_RULE = CommissionRule(name="orders", base=CommissionBase.APPROVED_ORDERS,
                             base_rate_bps=100, valid_from=date(2026, 1, 1))


async def test_commission_is_never_kept_for_a_rejected_or_cancelled_order():
    deps, uow = fake_deps(rate_bps=0)
    await with_rule(deps, ORDERS_RULE)
    await order_event(deps, order("o-1", "d-1", 100_000))            # submitted: nothing
    assert total(uow) == 0
    await order_event(deps, order("o-1", "d-1", 100_000, approved=JAN))
    assert total(uow) == 1_000
    await order_event(deps, order("o-1", "d-1", 100_000, voided=True))
    assert total(uow) == 0
    # Out of order: the cancellation first, the approval later — still nothing.
    await order_event(deps, order("o-2", "d-1", 100_000, voided=True))
    await order_event(deps, order("o-2", "d-1", 100_000, approved=JAN))
    await order_event(deps, order("o-2", "d-1", 100_000, approved=JAN))
    assert total(uow) == 0 and not ledger(uow, source_id="o-2")


async def test_returns_deduct_at_the_price_paid():
    from services.incentive.domain.facts import Return, ReturnLine

    deps, uow = fake_deps(rate_bps=0)
    await with_rule(deps, ORDERS_RULE)
    await order_event(deps, order("o-1", "d-1", 100_000, approved=JAN, quantity=10))
    await facts.record_return(Return("rt-1", "d-1", "default", date(2026, 2, 3),
                                     (ReturnLine(1, "A-001", 4),)),
                              uow=deps.uow(), clock=deps.clock, ids=deps.ids,
                              policy=deps.policy)
    assert total(uow) == 1_000 - 400
    [returned] = [v for k, v in ledger(uow).items() if k.unit_id == "rt-1"]
    assert (returned.base_minor, returned.quantity) == (-40_000, -4)


async def test_rules_are_validated_and_only_hq_changes_them():
    deps, _ = fake_deps()
    await with_rule(deps)
    with pytest.raises(InvalidArgument) as overlap:
        await with_rule(deps, CommissionRule(name="again", product_line="A系列",
                                             base_rate_bps=50, valid_from=date(2026, 6, 1)))
    assert "overlaps" in overlap.value.message
    with pytest.raises(InvalidArgument) as bad:
        await with_rule(deps, CommissionRule(name="", base_rate_bps=-5,
                                             valid_from=date(2026, 1, 1)))
    assert {v.field for v in bad.value.violations} == {"rule.name", "rule.base_rate_bps"}
    with pytest.raises(PermissionDenied):
        await rules.upsert_rule(RULE, who=Principal("user:x", roles=frozenset({"finance"})),
                                scopes=deps.scopes, uow=deps.uow(), clock=deps.clock,
                                ids=deps.ids, policy=deps.policy)


DEALER_A = Principal(subject="user:a", roles=frozenset({"dealer_sales"}), dealer_id="d-a")


async def test_a_dealer_sees_only_its_own_accruals():
    deps, uow = fake_deps()
    await accept(deps, "u-1", "d-a", [sale("u-1", 2, "d-a", "h-1", 1, 10_000, JAN)])
    await accept(deps, "u-2", "d-b", [sale("u-2", 2, "d-b", "h-1", 1, 10_000, JAN)])
    deps.scopes.allow(DEALER_A, ["d-a"])
    from services.incentive.domain.accruals import AccrualFilter

    page = await accruals.list_accruals(AccrualFilter(), "", PageRequest(), who=DEALER_A,
                                        uow=deps.uow(), scopes=deps.scopes)
    assert {a.dealer_id for a in page.items} == {"d-a"}
    assert (await accruals.list_accruals(AccrualFilter(), "d-b", PageRequest(), who=DEALER_A,
                                         uow=deps.uow(), scopes=deps.scopes)).items == []
    other = next(a for a in uow.accruals.rows if a.dealer_id == "d-b")
    with pytest.raises(NotFound):
        await accruals.get_accrual(other.id, who=DEALER_A, uow=deps.uow(), scopes=deps.scopes)
    assert all(a.kind is AccrualKind.COMMISSION for a in page.items)


async def test_an_override_for_a_dealer_is_seen_only_by_those_who_see_the_dealer():
    deps, _ = fake_deps()
    await with_rule(deps, CommissionRule(
        name="A", product_line="A系列", valid_from=date(2026, 1, 1),
        overrides=(Override(500, dealer_id="d-a", reason="大客户"), Override(400, dealer_id="d-b"),
                   Override(250, source=CustomerSource.HQ_LEAD))))
    deps.scopes.allow(DEALER_A, ["d-a"])
    page = await rules.list_rules("", None, PageRequest(), who=DEALER_A, uow=deps.uow(),
                                  scopes=deps.scopes)
    [rule] = page.items
    assert [(o.dealer_id, o.rate_bps) for o in rule.overrides] == [("d-a", 500), ("", 250)]
    every = await rules.list_rules("", None, PageRequest(), who=ADMIN, uow=deps.uow(),
                                   scopes=deps.scopes)
    assert len(every.items[0].overrides) == 3
    # Naming a dealer one does not see is NOT_FOUND, before the role is looked at.
    with pytest.raises(NotFound):
        await rules.upsert_rule(CommissionRule(name="B", product_line="B系列",
                                               valid_from=date(2026, 1, 1),
                                               overrides=(Override(1, dealer_id="d-b"),)),
                                who=DEALER_A, scopes=deps.scopes, uow=deps.uow(),
                                clock=deps.clock, ids=deps.ids, policy=deps.policy)
