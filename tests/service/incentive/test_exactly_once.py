"""Exactly once: whatever order events arrive in, repeated or not, the ledger ends up
holding what a full recomputation of the period from the stored facts gives — and the
same as applying each event once in order. A property test over random event orders."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    CustomerSource,
)
from services.incentive.domain.facts import Diversion, LeadEvent, Return, ReturnLine
from services.incentive.domain.periods import Period, PeriodKind
from services.incentive.domain.programs import Program
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier
from services.incentive.usecases import facts, programs, rules, settlement
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    accept,
    configures,
    ledger,
    order,
    order_event,
    register,
    sale,
)

D = (date(2026, 1, 10), date(2026, 2, 5), date(2026, 3, 20))


def _events():
    """Every event of a small quarter: uploads (one replaced, one in two parts),
    diversions, registrations and leads, orders approved and cancelled, a return."""
    rows1 = [sale("u1", 2, "d1", "h1", 10, 100_000, D[0]),
             sale("u1", 3, "d1", "h2", 4, 40_000, D[1]),
             sale("u1", 4, "d1", "", 3, 30_000, D[1], transfer="d2")]
    rows2 = [sale("u2", 2, "d1", "h1", 12, 120_000, D[0]),
             sale("u2", 3, "d1", "h3", 5, 50_000, D[2], batch="BX")]
    rows3a = [sale("u3", 2, "d2", "h1", 30, 300_000, D[1])]
    rows3b = [sale("u3", 9, "d2", "h2", 25, 250_000, D[2], part=1)]

    def run(factory, *args, **kwargs):
        async def call(deps):
            await factory(deps, *args, **kwargs)
        return call

    async def superseded(deps):
        await facts.supersede_upload("u1", "u2", uow=deps.uow(), clock=deps.clock,
                                     ids=deps.ids, policy=deps.policy)

    async def diverted(deps):
        await facts.record_diversion(Diversion("dv1", "u2", "d1", "A-001", "", "BX", "h3",
                                               D[2], D[2]),
                                     uow=deps.uow(), clock=deps.clock, ids=deps.ids,
                                     policy=deps.policy)

    async def lead(deps):
        await facts.record_lead_event(LeadEvent("l1", "d2", "h2", "A系列", date(2026, 2, 1), True),
                                      uow=deps.uow(), clock=deps.clock, ids=deps.ids,
                                      policy=deps.policy)

    async def returned(deps):
        await facts.record_return(Return("rt1", "d1", "default", D[2],
                                         (ReturnLine(1, "A-001", 2),)),
                                  uow=deps.uow(), clock=deps.clock, ids=deps.ids,
                                  policy=deps.policy)

    return [
        run(accept, "u1", "d1", rows1),
        run(accept, "u2", "d1", rows2, replaces="u1"),
        superseded,
        run(accept, "u3", "d2", rows3a, parts=2),
        run(accept, "u3", "d2", rows3b, part=1, parts=2),
        diverted,
        run(register, "r1", "d1", "h1", CustomerSource.DEALER_SOURCED, date(2026, 1, 5)),
        run(register, "r1", "d1", "h1", CustomerSource.DEALER_SOURCED, ended=date(2026, 3, 1)),
        run(register, "r2", "d2", "h1", CustomerSource.HQ_LEAD, date(2026, 2, 1)),
        lead,
        run(order_event, order("o1", "d1", 200_000, approved=D[0])),
        run(order_event, order("o1", "d1", 200_000, voided=True)),
        run(order_event, order("o2", "d1", 80_000, approved=D[1], quantity=8)),
        run(order_event, order("o3", "d2", 500_000, approved=D[1], quantity=50)),
        returned,
    ]


async def _world():
    deps, uow = fake_deps(rate_bps=100)
    for dealer_id in ("d1", "d2"):
        await uow.dealers.put(dealer(dealer_id))
    await rules.upsert_rule(CommissionRule(
        name="A", product_line="A系列", base_rate_bps=150,
        source_rates={CustomerSource.DEALER_SOURCED: 400, CustomerSource.HQ_LEAD: 250},
        valid_from=date(2026, 1, 1)), who=ADMIN, **configures(deps))
    await rules.upsert_rule(CommissionRule(
        name="orders", base=CommissionBase.APPROVED_ORDERS, base_rate_bps=50,
        valid_from=date(2026, 1, 1)), who=ADMIN, **configures(deps))
    quarter = Period.parse("2026-Q1")
    for basis, threshold, tiers, mode in (
            (Basis.QUANTITY, Threshold.QUANTITY, (Tier(10, 100), Tier(30, 300)), Mode.RETROACTIVE),
            (Basis.PURCHASE_AMOUNT, Threshold.AMOUNT, (Tier(0, 100), Tier(300_000, 200)),
             Mode.MARGINAL)):
        await programs.create_program(Program(
            "", 0, f"Q1 {basis}", ("A系列",), (), PeriodKind.QUARTER, quarter.start,
            quarter.end, quarter.start, basis, Scheme(mode, threshold, tiers)),
            who=ADMIN, uow=deps.uow(), audiences=deps.audiences, clock=deps.clock,
            ids=deps.ids, policy=deps.policy)
    return deps, uow


async def _apply(order_of_events: list[int]):
    deps, uow = await _world()
    events = _events()
    for index in order_of_events:
        await events[index](deps)
    return deps, uow


EVENT_COUNT = len(_events())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(range(EVENT_COUNT)),
       st.lists(st.integers(0, EVENT_COUNT - 1), max_size=6))
async def test_any_order_with_repeats_gives_the_recomputed_ledger(order_of_events, repeats):
    sequence = list(order_of_events)
    for position, index in enumerate(repeats):
        sequence.insert((position * 7) % (len(sequence) + 1), index)
    deps, uow = await _apply(sequence)
    _, reference = await _apply(list(range(EVENT_COUNT)))
    assert ledger(uow) == ledger(reference)
    # A full recomputation from the stored facts books nothing: they already agree.
    corrections, units = await settlement.recompute_period(
        Period.parse("2026-Q1"), who=ADMIN, uow=deps.uow(), clock=deps.clock, ids=deps.ids,
        policy=deps.policy)
    assert (corrections, units > 0) == (0, True)


async def test_the_reference_world_earns_what_the_rules_say():
    _, uow = await _apply(list(range(EVENT_COUNT)))
    lines = ledger(uow)
    # u1 is replaced; u2's BX row is diverted; only its h1 row counts for d1.
    flow_d1 = {k.unit_id: v for k, v in lines.items()
               if k.dealer_id == "d1" and k.unit_type.value == "flow_upload"}
    assert list(flow_d1) == ["u2#0"] and flow_d1["u2#0"].base_minor == 120_000
    # The cancelled order o1 earns nothing; o2 does, less the return.
    assert not [k for k in lines if k.unit_id == "o1"]
    rebates = {(k.dealer_id, k.scheme_version, k.tier): v for k, v in lines.items()
               if k.kind.value == "rebate" and k.product_line == "A系列"
               and v.quantity and k.tier}
    assert rebates
