"""Settlement on in-memory collaborators: finance closes a period after its grace, one
statement per dealer with lines by rule, source, program and tier traced to the uploads
and orders behind them; someone else approves it, which credits each positive statement
once (RebateCredited); a period is closed once; late data becomes an adjustment in the
next period and never changes a settled statement; a negative total is carried forward."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    CustomerSource,
)
from services.incentive.domain.facts import Registration
from services.incentive.domain.periods import Period
from services.incentive.domain.settlement import LineKind, SettlementStatus
from services.incentive.domain.targets import Target, TargetMeasure
from services.incentive.domain.tiers import Tier
from services.incentive.usecases import facts, rules, settlement, targets
from shared.errors import AlreadyExists, FailedPrecondition, PermissionDenied
from shared.events.incentive import REBATE_CREDITED, SETTLEMENT_CLOSED, SETTLEMENT_POSTED
from shared.testing import FakeClock
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    CONTROLLER,
    FINANCE,
    accept,
    approve,
    close,
    configures,
    create,
    dealer_staff,
    hq_sees_everything,
    ledger,
    order,
    order_event,
    program,
    register,
    sale,
    writes,
)

JAN, FEB, MAR = date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 5)
SELL_THROUGH = CommissionRule(
    name="A系列", product_line="A系列", base_rate_bps=100,
    source_rates={CustomerSource.DEALER_SOURCED: 300, CustomerSource.HQ_LEAD: 200},
    valid_from=date(2026, 1, 1))
ORDERS = CommissionRule(name="orders", base=CommissionBase.APPROVED_ORDERS, base_rate_bps=50,
                        valid_from=date(2026, 1, 1))


async def _world(grace_days: int = 0, clock: FakeClock | None = None):
    """Two dealers; d1 registered h1 itself. January: d1 sells 10 units to h1 (own
    customer, 3%) and 5 to h9 (unregistered, 1%) in u1; d2 sells 4 to h2 in u2 and has
    an order approved (0.5%)."""
    deps, uow = fake_deps(rate_bps=0, grace_days=grace_days, clock=clock)
    hq_sees_everything(deps)
    await uow.dealers.put(dealer("d1"))
    await uow.dealers.put(dealer("d2", region_code="south"))
    rule_ids = {}
    for rule in (SELL_THROUGH, ORDERS):
        stored, _ = await rules.upsert_rule(rule, who=ADMIN, **configures(deps))
        rule_ids[rule.name] = stored.id
    await register(deps, "r1", "d1", "h1", CustomerSource.DEALER_SOURCED, date(2026, 1, 2))
    await accept(deps, "u1", "d1", [sale("u1", 2, "d1", "h1", 10, 100_000, JAN),
                                    sale("u1", 3, "d1", "h9", 5, 50_000, date(2026, 1, 12))])
    await accept(deps, "u2", "d2", [sale("u2", 2, "d2", "h2", 4, 40_000, date(2026, 1, 20))])
    await order_event(deps, order("o1", "d2", 200_000, approved=date(2026, 1, 15)))
    return deps, uow, rule_ids


def _statement(uow, period_id: str, dealer_id: str):
    return next(s for s in uow.settlements.settlements.values()
                if s.period_id == period_id and s.dealer_id == dealer_id)


async def test_a_period_closes_only_after_its_grace_for_late_data():
    clock = FakeClock(datetime(2026, 2, 5, 9, tzinfo=UTC))
    deps, uow, _ = await _world(grace_days=10, clock=clock)
    with pytest.raises(FailedPrecondition) as early:
        await close(deps, "2026-01")
    assert early.value.reason == "GRACE_PERIOD" and "2026-02-11" in early.value.message
    assert not uow.settlements.months and not uow.settlements.periods_
    clock.advance(days=6)
    record = await close(deps, "2026-01")
    assert record.status is SettlementStatus.CLOSED


async def test_closing_makes_one_statement_per_dealer_traced_to_its_sources():
    deps, uow, rule_ids = await _world()
    record = await close(deps, "2026-01")
    assert (record.dealer_count, record.total_minor) == (2, 3_500 + 1_400)
    d1 = _statement(uow, record.id, "d1")
    assert [(ln.kind, ln.customer_source, ln.rate_bps, ln.base_minor, ln.quantity,
             ln.amount_minor, ln.sources) for ln in d1.lines] == [
        (LineKind.COMMISSION, "dealer_sourced", 300, 100_000, 10, 3_000, ("flow_upload:u1#0",)),
        (LineKind.COMMISSION, "unregistered", 100, 50_000, 5, 500, ("flow_upload:u1#0",)),
    ]
    assert {ln.scheme_name for ln in d1.lines} == {"A系列"}
    d2 = _statement(uow, record.id, "d2")
    assert {(ln.scheme_id, ln.amount_minor, ln.sources) for ln in d2.lines} == {
        (rule_ids["A系列"], 400, ("flow_upload:u2#0",)),
        (rule_ids["orders"], 1_000, ("order:o1",))}
    assert d2.total_minor == 1_400
    # Every accrual of January is frozen into this close, and only into it.
    assert all(a.settlement_id == record.id for a in uow.accruals.rows)
    [closed] = uow.published_of(SETTLEMENT_CLOSED)
    assert closed.period.id == record.id and closed.period.period == "2026-01"


async def test_only_finance_closes_and_another_person_approves_crediting_once():
    deps, uow, _ = await _world()
    with pytest.raises(PermissionDenied):
        await close(deps, "2026-01", who=dealer_staff("d1"))
    record = await close(deps, "2026-01", who=FINANCE)
    with pytest.raises(PermissionDenied) as same_person:
        await approve(deps, record.id, who=FINANCE)
    assert same_person.value.reason == "FOUR_EYES"
    with pytest.raises(PermissionDenied):
        await approve(deps, record.id, who=dealer_staff("d1"))
    assert not uow.published_of(REBATE_CREDITED)
    settled, credited = await approve(deps, record.id, who=CONTROLLER)
    assert (settled.status, settled.settled_by, credited) == (SettlementStatus.SETTLED,
                                                              CONTROLLER.subject, 2)
    credits = {c.dealer_id: c for c in uow.published_of(REBATE_CREDITED)}
    assert {d: c.amount.amount_minor for d, c in credits.items()} == {"d1": 3_500, "d2": 1_400}
    d1 = _statement(uow, record.id, "d1")
    assert (d1.status, d1.credit_id) == (SettlementStatus.SETTLED, credits["d1"].credit_id)
    assert credits["d1"].credit_id == d1.id and credits["d1"].settlement_period_id == record.id
    # Approving again credits nothing more.
    again, credited = await approve(deps, record.id, who=ADMIN)
    assert (again.settled_by, credited) == (CONTROLLER.subject, 0)
    assert len(uow.published_of(REBATE_CREDITED)) == 2
    assert len(uow.published_of(SETTLEMENT_POSTED)) == 1


async def test_a_period_is_closed_once_and_a_refused_close_leaves_nothing():
    deps, uow, _ = await _world()
    first = await close(deps, "2026-01")
    frozen = {a.id: a.settlement_id for a in uow.accruals.rows}
    with pytest.raises(AlreadyExists) as twice:
        await close(deps, "2026-01", who=ADMIN)
    assert twice.value.reason == "PERIOD_CLOSED"
    # A quarter overlapping the closed month is refused as a whole: February and March
    # stay open and nothing new is frozen.
    await accept(deps, "u3", "d1", [sale("u3", 2, "d1", "h1", 1, 10_000, FEB)])
    deps.clock.advance(days=40)
    with pytest.raises(AlreadyExists):
        await close(deps, "2026-Q1")
    assert set(uow.settlements.periods_) == {first.id}
    assert sorted(m for _, m in uow.settlements.months) == ["2026-01"]
    assert {a.id: a.settlement_id for a in uow.accruals.rows if a.id in frozen} == frozen
    assert [a.settlement_id for a in uow.accruals.rows if a.id not in frozen] == [""]


async def test_late_data_is_an_adjustment_in_the_next_period_and_a_settled_statement_stays():
    deps, uow, _ = await _world()
    january = await close(deps, "2026-01")
    await approve(deps, january.id)
    settled = _statement(uow, january.id, "d1")
    frozen = {a.id for a in uow.accruals.rows if a.settlement_id == january.id}
    # After the close: a late January upload (2 units to h1), and u1 replaced by one
    # without the h9 row.
    await accept(deps, "u3", "d1", [sale("u3", 2, "d1", "h1", 2, 20_000, date(2026, 1, 28))])
    await accept(deps, "u1b", "d1", [sale("u1b", 2, "d1", "h1", 10, 100_000, JAN)],
                 replaces="u1")
    assert _statement(uow, january.id, "d1") == settled
    shown, provisional = await settlement.statement(
        settled.id, "", None, who=dealer_staff("d1"), scopes=_scoped(deps), **writes(deps))
    assert (shown, provisional) == (settled, False)
    assert {a.id for a in uow.accruals.rows if a.settlement_id == january.id} == frozen
    february = await close(deps, "2026-02")
    adjusted = _statement(uow, february.id, "d1")
    assert {(ln.kind, ln.customer_source, ln.period_start, ln.period_end, ln.amount_minor)
            for ln in adjusted.lines} == {
        (LineKind.ADJUSTMENT, "dealer_sourced", date(2026, 1, 1), date(2026, 1, 31), 600),
        (LineKind.ADJUSTMENT, "unregistered", date(2026, 1, 1), date(2026, 1, 31), -500)}
    assert adjusted.total_minor == 100
    sources = {s for ln in adjusted.lines for s in ln.sources}
    assert sources == {"flow_upload:u1#0", "flow_upload:u1b#0", "flow_upload:u3#0"}
    assert _statement(uow, january.id, "d1") == settled


def _scoped(deps):
    deps.scopes.allow(dealer_staff("d1"), ["d1"])
    return deps.scopes


async def test_a_negative_total_is_carried_into_the_next_settlement():
    deps, uow, _ = await _world()
    january = await close(deps, "2026-01")
    await approve(deps, january.id)
    # u1 replaced by an upload with only the unregistered row: -3,000 for January.
    await accept(deps, "u1c", "d1", [sale("u1c", 3, "d1", "h9", 5, 50_000, date(2026, 1, 12))],
                 replaces="u1")
    february = await close(deps, "2026-02")
    _, credited = await approve(deps, february.id)
    owed = _statement(uow, february.id, "d1")
    assert (owed.total_minor, owed.carried_forward_minor, owed.credit_id) == (-3_000, -3_000, "")
    assert credited == 0 and len(uow.published_of(REBATE_CREDITED)) == 2
    await accept(deps, "u4", "d1", [sale("u4", 2, "d1", "h1", 20, 200_000, MAR)])
    deps.clock.advance(days=40)
    march = await close(deps, "2026-03")
    netted = _statement(uow, march.id, "d1")
    assert [(ln.kind, ln.amount_minor) for ln in netted.lines] == [
        (LineKind.COMMISSION, 6_000), (LineKind.CARRIED_FORWARD, -3_000)]
    assert netted.total_minor == 3_000
    await approve(deps, march.id)
    assert [c.amount.amount_minor for c in uow.published_of(REBATE_CREDITED)
            if c.settlement_period_id == march.id] == [3_000]


async def test_quarterly_rebates_settle_once_every_month_of_the_quarter_is_closed():
    deps, uow, _ = await _world()
    q1 = await create(deps, program("Q1 A系列", (Tier(10, 100), Tier(30, 200))))
    await accept(deps, "u5", "d1", [sale("u5", 2, "d1", "h1", 25, 250_000, FEB)])
    # d1: 15 units in January, 25 in February: 40 units, 400,000 → tier 2, 2%.
    for month in ("2026-01", "2026-02"):
        record = await close(deps, month)
        assert not [ln for s in uow.settlements.settlements.values() if s.period_id == record.id
                    for ln in s.lines if ln.kind is LineKind.REBATE]
    deps.clock.advance(days=40)
    march = await close(deps, "2026-03")
    [rebate] = [ln for ln in _statement(uow, march.id, "d1").lines
                if ln.kind is LineKind.REBATE]
    assert (rebate.scheme_id, rebate.scheme_name, rebate.tier, rebate.rate_bps,
            rebate.quantity, rebate.base_minor, rebate.amount_minor) == (
        q1.id, "Q1 A系列", 2, 200, 40, 400_000, 8_000)
    assert (rebate.period_start, rebate.period_end) == (date(2026, 1, 1), date(2026, 3, 31))
    # Where its volume came from: the upload parts it counts.
    assert rebate.sources == ("flow_upload:u1#0", "flow_upload:u5#0")
    # d2 reached no tier: its volume shows, at nothing.
    [none] = [ln for ln in _statement(uow, march.id, "d2").lines if ln.kind is LineKind.REBATE]
    assert (none.tier, none.quantity, none.amount_minor) == (0, 4, 0)


async def test_settled_periods_refuse_new_rules_targets_and_programs():
    deps, uow, _ = await _world()
    await close(deps, "2026-01")
    with pytest.raises(FailedPrecondition) as rule:
        await rules.upsert_rule(CommissionRule(name="B", product_line="B系列",
                                               valid_from=date(2026, 1, 1)),
                                who=ADMIN, **configures(deps))
    assert rule.value.reason == "PERIOD_CLOSED" and "2026-02-01" in rule.value.message
    await rules.upsert_rule(CommissionRule(name="B", product_line="B系列",
                                           valid_from=date(2026, 2, 1)),
                            who=ADMIN, **configures(deps))
    for label in ("2026-01", "2026-Q1"):
        with pytest.raises(FailedPrecondition):
            await targets.set_targets([Target("d1", "A系列", Period.parse(label),
                                               TargetMeasure.SELL_THROUGH_QUANTITY, 10)],
                                      who=ADMIN, **configures(deps))
    with pytest.raises(FailedPrecondition):
        await create(deps, program("Q1", (Tier(1, 100),)))
    assert not uow.targets.targets and not uow.programs.versions_


async def test_an_open_period_shows_a_provisional_statement_from_the_accruals_so_far():
    deps, uow, _ = await _world()
    scopes = _scoped(deps)
    shown, provisional = await settlement.statement(
        "", "d1", Period.parse("2026-01"), who=dealer_staff("d1"), scopes=scopes,
        **writes(deps))
    assert provisional and shown.total_minor == 3_500 and not shown.id
    assert sum(v.amount_minor for k, v in ledger(uow, dealer_ids=frozenset({"d1"})).items()) \
        == 3_500
    record = await close(deps, "2026-01")
    final, provisional = await settlement.statement(
        "", "d1", Period.parse("2026-01"), who=dealer_staff("d1"), scopes=scopes,
        **writes(deps))
    assert not provisional and final.id == _statement(uow, record.id, "d1").id


async def test_each_sees_the_statements_of_its_dealers():
    from shared.errors import NotFound
    from shared.pagination import PageRequest

    deps, uow, _ = await _world()
    record = await close(deps, "2026-01")
    scopes = _scoped(deps)
    mine = await settlement.list_settlements("", "", "", PageRequest(), who=dealer_staff("d1"),
                                             uow=deps.uow(), scopes=scopes)
    assert [s.dealer_id for s in mine.items] == ["d1"]
    assert (await settlement.list_settlements(record.id, "d2", "", PageRequest(),
                                              who=dealer_staff("d1"), uow=deps.uow(),
                                              scopes=scopes)).items == []
    with pytest.raises(NotFound):
        await settlement.statement(_statement(uow, record.id, "d2").id, "", None,
                                   who=dealer_staff("d1"), scopes=scopes, **writes(deps))
    with pytest.raises(NotFound):
        await settlement.statement("", "d2", Period.parse("2026-01"), who=dealer_staff("d1"),
                                   scopes=scopes, **writes(deps))
    with pytest.raises(PermissionDenied):   # runs are company totals: HQ's
        await settlement.list_periods("", PageRequest(), who=dealer_staff("d1"),
                                      uow=deps.uow())
    assert [p.id for p in (await settlement.list_periods("", PageRequest(), who=FINANCE,
                                                         uow=deps.uow())).items] == [record.id]
    every = await settlement.list_settlements(record.id, "", "", PageRequest(), who=FINANCE,
                                              uow=deps.uow(), scopes=scopes)
    assert sorted(s.dealer_id for s in every.items) == ["d1", "d2"]


async def test_recomputing_a_settled_period_books_late_changes_as_adjustments_only():
    deps, uow, _ = await _world()
    january = await close(deps, "2026-01")
    settled = _statement(uow, january.id, "d1")
    # A registration approved late reprices u1's h9 row (unregistered → dealer-sourced).
    await facts.record_registration(
        Registration("r9", "d1", "h9", "A系列", CustomerSource.DEALER_SOURCED, date(2026, 1, 1)),
        "registration.approved", **writes(deps))
    corrections, _ = await settlement.recompute_period(Period.parse("2026-Q1"), who=ADMIN,
                                                       **writes(deps))
    assert corrections == 0
    late = [a for a in uow.accruals.rows if not a.settlement_id]
    assert sum(a.amounts.amount_minor for a in late) == 1_000
    assert _statement(uow, january.id, "d1") == settled
