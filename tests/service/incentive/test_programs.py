"""Rebate programs on in-memory collaborators: bad programs refused naming the field, the
tier maths as accruals (retroactive, marginal, fixed amounts, caps, share of target,
purchases), versions from the start of a period, audiences that follow tags, the
programs a dealer may see, and the what-if."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.incentive.domain.accruals import AccrualKind
from services.incentive.domain.commission import CommissionBase, CommissionRule
from services.incentive.domain.facts import Return, ReturnLine
from services.incentive.domain.periods import Period, PeriodKind
from services.incentive.domain.programs import Program
from services.incentive.domain.targets import Target, TargetMeasure
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier
from services.incentive.usecases import facts, programs, rules, targets
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.incentive import REBATE_PROGRAM_CREATED, REBATE_PROGRAM_UPDATED
from shared.pagination import PageRequest
from shared.testing import FakeClock
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    FINANCE,
    accept,
    audience_tag,
    close,
    configures,
    create,
    dealer_staff,
    hq_sees_everything,
    ledger,
    order,
    order_event,
    program,
    sale,
    writes,
)

FEB = date(2026, 2, 10)


async def _world(clock: FakeClock | None = None, **dealers):
    deps, uow = fake_deps(rate_bps=0, clock=clock)
    hq_sees_everything(deps)
    for dealer_id, changes in (dealers or {"d1": {}, "d2": {}}).items():
        await uow.dealers.put(dealer(dealer_id, **changes))
    return deps, uow


async def _d1_sells_40_units(deps):
    """d1: 40 units for 400,000 in Q1 (10,000 a unit), in two uploads."""
    await accept(deps, "u1", "d1", [sale("u1", 2, "d1", "h1", 10, 100_000, date(2026, 1, 10))])
    await accept(deps, "u2", "d1", [sale("u2", 2, "d1", "h2", 30, 300_000, FEB)])


def _rebates(uow, program_id: str) -> dict[str, tuple[int, int]]:
    """Per dealer: (tier, rebate) held in the ledger for the program."""
    found = {}
    for key, value in ledger(uow, kind=AccrualKind.REBATE, scheme_id=program_id).items():
        if value.amount_minor or key.tier:
            found[key.dealer_id] = (key.tier, value.amount_minor)
    return found


async def test_bad_programs_are_refused_naming_what_is_wrong_and_leave_nothing():
    deps, uow = await _world()
    cases = [
        ((Tier(30, 100), Tier(10, 200)), {}, "program.tiers[1]"),       # unordered
        ((Tier(10, 100), Tier(10, 200)), {}, "program.tiers[1]"),       # overlapping
        ((Tier(10, -5),), {}, "program.tiers[0].rate_bps"),             # negative rate
        ((Tier(10, 100, 5_000),), {}, "program.tiers[0]"),              # rate and fixed
        ((Tier(10, 0),), {}, "program.tiers[0]"),                       # pays nothing
        ((), {}, "program.tiers"),
        ((Tier(10, 100),), {"threshold": Threshold.AMOUNT}, "program.tiers"),
        ((Tier(10, 100),), {"cap": -1}, "program.cap"),
    ]
    for tiers, options, field in cases:
        with pytest.raises(InvalidArgument) as refused:
            await create(deps, program("bad", tiers, **options))
        assert field in {v.field for v in refused.value.violations}, (tiers, options)
    misaligned = replace(program("mid-month", (Tier(1, 100),)), start=date(2026, 1, 15))
    with pytest.raises(InvalidArgument) as starts:
        await create(deps, misaligned)
    assert starts.value.violations[0].field == "program.period_start"
    with pytest.raises(InvalidArgument) as nobody:
        await create(deps, program("nobody", (Tier(1, 100),), audience=audience_tag("无此标签")))
    assert nobody.value.violations[0].field == "program.audience"
    with pytest.raises(PermissionDenied):
        await create(deps, program("finance may not", (Tier(1, 100),)), who=FINANCE)
    assert not uow.programs.versions_ and not uow.accruals.rows and not uow.published


async def test_retroactive_marginal_fixed_and_capped_tiers_accrue_exactly():
    deps, uow = await _world()
    await _d1_sells_40_units(deps)
    retro = await create(deps, program("retroactive", (Tier(10, 100), Tier(30, 200))))
    marginal = await create(deps, program("marginal", (Tier(0, 100), Tier(30, 300)),
                                          mode=Mode.MARGINAL))
    fixed = await create(deps, program("fixed", (Tier(10, fixed_minor=5_000),
                                                 Tier(30, fixed_minor=20_000))))
    capped = await create(deps, program("capped", (Tier(100_000, 300),), basis=Basis.AMOUNT,
                                        threshold=Threshold.AMOUNT, cap=10_000))
    assert _rebates(uow, retro.id) == {"d1": (2, 8_000)}          # 2% of all 400,000
    assert _rebates(uow, marginal.id) == {"d1": (2, 3_000 + 3_000)}  # 30 at 1%, 10 at 3%
    assert _rebates(uow, fixed.id) == {"d1": (2, 20_000)}
    assert _rebates(uow, capped.id) == {"d1": (1, 10_000)}        # 12,000, capped
    assert len(uow.published_of(REBATE_PROGRAM_CREATED)) == 4
    # More sales move d1 along; nothing is booked twice.
    await accept(deps, "u3", "d1", [sale("u3", 2, "d1", "h1", 5, 50_000, FEB)])
    assert _rebates(uow, retro.id) == {"d1": (2, 9_000)}
    assert _rebates(uow, marginal.id) == {"d1": (2, 3_000 + 4_500)}


async def test_a_tier_can_be_a_share_of_the_dealers_target():
    deps, uow = await _world()
    await _d1_sells_40_units(deps)
    await accept(deps, "u9", "d2", [sale("u9", 2, "d2", "h1", 50, 500_000, FEB)])
    quarter = Period.parse("2026-Q1")

    async def target(value: int):
        await targets.set_targets([Target("d1", "A系列", quarter,
                                          TargetMeasure.SELL_THROUGH_QUANTITY, value)],
                                  who=ADMIN, **configures(deps))

    await target(40)
    share = await create(deps, program("≥ 80% / 100% of target",
                                       (Tier(8_000, 100), Tier(10_000, 300)),
                                       threshold=Threshold.TARGET_SHARE))
    # d1 reached 100% of 40 units: 3%; d2 has no target, so no tier.
    assert _rebates(uow, share.id) == {"d1": (2, 12_000)}
    await target(50)   # HQ raises it: 80%, 1% — the rebate follows at once
    assert _rebates(uow, share.id) == {"d1": (1, 4_000)}
    await target(60)   # 66%: nothing
    assert _rebates(uow, share.id) == {}


async def test_purchase_amount_programs_count_approved_orders_less_returns():
    deps, uow = await _world()
    await rules.upsert_rule(CommissionRule(name="orders", base=CommissionBase.APPROVED_ORDERS,
                                           base_rate_bps=0, valid_from=date(2026, 1, 1)),
                            who=ADMIN, **configures(deps))
    purchases = await create(deps, program("purchases", (Tier(100_000, 100), Tier(500_000, 200)),
                                           basis=Basis.PURCHASE_AMOUNT,
                                           threshold=Threshold.AMOUNT))
    await order_event(deps, order("o1", "d1", 300_000, approved=date(2026, 1, 5)))
    assert _rebates(uow, purchases.id) == {"d1": (1, 3_000)}
    await order_event(deps, order("o2", "d1", 300_000, approved=FEB))
    assert _rebates(uow, purchases.id) == {"d1": (2, 12_000)}
    await order_event(deps, order("o2", "d1", 300_000, voided=True))     # cancelled
    assert _rebates(uow, purchases.id) == {"d1": (1, 3_000)}
    await order_event(deps, order("o3", "d1", 300_000))                  # only submitted
    assert _rebates(uow, purchases.id) == {"d1": (1, 3_000)}
    # One of o1's ten units comes back (30,000 a unit).
    await facts.record_return(Return("rt1", "d1", "default", date(2026, 3, 1),
                                     (ReturnLine(1, "A-001", 1),)), **writes(deps))
    assert _rebates(uow, purchases.id) == {"d1": (1, 2_700)}


async def test_a_new_version_applies_from_a_period_on_and_earlier_periods_keep_theirs():
    deps, uow = await _world(FakeClock(datetime(2026, 5, 2, 9, tzinfo=UTC)))
    year = Program("", 0, "2026 A系列", ("A系列",), (), PeriodKind.QUARTER, date(2026, 1, 1),
                   date(2026, 12, 31), date(2026, 1, 1), Basis.QUANTITY,
                   Scheme(Mode.RETROACTIVE, Threshold.QUANTITY, (Tier(10, 100), Tier(30, 200))))
    first = await create(deps, year)
    await _d1_sells_40_units(deps)
    await accept(deps, "u4", "d1", [sale("u4", 2, "d1", "h1", 40, 400_000, date(2026, 4, 10))])
    richer = replace(year, scheme=Scheme(Mode.RETROACTIVE, Threshold.QUANTITY,
                                         (Tier(10, 500),)))
    for wrong, message in ((date(2026, 4, 15), "must start one of the program's periods"),
                           (date(2026, 1, 1), "must be after the latest version's start")):
        with pytest.raises(InvalidArgument) as refused:
            await programs.update_program(first.id, richer, wrong, who=ADMIN,
                                          audiences=deps.audiences, **writes(deps))
        assert refused.value.violations[0].field == "effective_from"
        assert message in refused.value.violations[0].description
    await close(deps, "2026-Q1")
    second = await programs.update_program(first.id, richer, date(2026, 4, 1), who=ADMIN,
                                           audiences=deps.audiences, **writes(deps))
    assert (second.version, second.effective_from) == (2, date(2026, 4, 1))
    held = {(k.period_start, k.scheme_version, k.tier): v.amount_minor
            for k, v in ledger(uow, kind=AccrualKind.REBATE, dealer_ids=frozenset({"d1"})).items()}
    assert held == {(date(2026, 1, 1), 1, 2): 8_000,      # Q1 kept version 1 (settled)
                    (date(2026, 4, 1), 2, 1): 20_000}     # Q2: version 2, 5%
    versions, members = await programs.get_program(first.id, who=ADMIN, uow=deps.uow(),
                                                   scopes=deps.scopes)
    assert [v.version for v in versions] == [1, 2] and members == 2
    assert len(uow.published_of(REBATE_PROGRAM_UPDATED)) == 1


async def test_a_version_never_starts_in_a_settled_period():
    deps, uow = await _world(FakeClock(datetime(2026, 8, 2, 9, tzinfo=UTC)))
    year = Program("", 0, "2026", ("A系列",), (), PeriodKind.QUARTER, date(2026, 1, 1),
                   date(2026, 12, 31), date(2026, 1, 1), Basis.QUANTITY,
                   Scheme(Mode.RETROACTIVE, Threshold.QUANTITY, (Tier(10, 100),)))
    first = await create(deps, year)
    for quarter in ("2026-Q1", "2026-Q2"):
        await close(deps, quarter)
    with pytest.raises(FailedPrecondition) as settled:
        await programs.update_program(first.id, year, date(2026, 4, 1), who=ADMIN,
                                      audiences=deps.audiences, **writes(deps))
    assert settled.value.reason == "PERIOD_CLOSED" and "2026-Q2" in settled.value.message
    assert len(uow.programs.versions_[first.id]) == 1
    later = await programs.update_program(first.id, year, date(2026, 7, 1), who=ADMIN,
                                          audiences=deps.audiences, **writes(deps))
    assert later.version == 2


async def test_the_audience_follows_the_dealers_tags():
    deps, uow = await _world(d1={"tags": ("VIP",)}, d2={})
    vip = await create(deps, program("VIP", (Tier(1, 100),), audience=audience_tag("VIP")))
    assert uow.programs.members_[vip.id] == {"d1"}
    await _d1_sells_40_units(deps)
    await accept(deps, "u9", "d2", [sale("u9", 2, "d2", "h1", 5, 50_000, FEB)])
    assert _rebates(uow, vip.id) == {"d1": (1, 4_000)}
    # identity reports d2 tagged VIP and d1 no longer: d2 joins, d1 leaves (its open
    # rebate reversed).
    when = datetime(2026, 3, 1, tzinfo=UTC)
    await programs.reevaluate_dealer(dealer("d2", tags=("VIP",), updated_at=when),
                                     "identity.tags.changed", **writes(deps))
    await programs.reevaluate_dealer(dealer("d1", updated_at=when), "identity.tags.changed",
                                     **writes(deps))
    assert uow.programs.members_[vip.id] == {"d2"}
    assert _rebates(uow, vip.id) == {"d2": (1, 500)}
    # An older view of d1 arriving late changes nothing.
    await programs.reevaluate_dealer(dealer("d1", tags=("VIP",), updated_at=datetime(
        2026, 2, 1, tzinfo=UTC)), "identity.org_unit.updated", **writes(deps))
    assert uow.programs.members_[vip.id] == {"d2"}


async def test_dealers_see_the_programs_they_are_in():
    deps, _ = await _world(d1={"tags": ("VIP",)}, d2={"tags": ("新客",)})
    vip = await create(deps, program("VIP", (Tier(1, 100),), audience=audience_tag("VIP")))
    new = await create(deps, program("新客", (Tier(1, 100),), audience=audience_tag("新客")))
    d1 = dealer_staff("d1")
    deps.scopes.allow(d1, ["d1"])
    listed = await programs.list_programs(programs.ProgramFilter(), PageRequest(), who=d1,
                                          uow=deps.uow(), scopes=deps.scopes)
    assert [p.id for p, _ in listed.items] == [vip.id]
    with pytest.raises(NotFound):
        await programs.get_program(new.id, who=d1, uow=deps.uow(), scopes=deps.scopes)
    assert (await programs.list_programs(programs.ProgramFilter(dealer_id="d2"), PageRequest(),
                                         who=d1, uow=deps.uow(), scopes=deps.scopes)).items == []
    every = await programs.list_programs(programs.ProgramFilter(), PageRequest(), who=ADMIN,
                                         uow=deps.uow(), scopes=deps.scopes)
    assert {p.id for p, _ in every.items} == {vip.id, new.id}


# ------------------------------------------------------------------------------ what-if
async def _what_if(deps, program_id: str, dealer_id: str = "d1", more: int = 0,
                   more_amount: int | None = None, on: date | None = None, who=ADMIN):
    return await programs.what_if_for(program_id, dealer_id, on, more, more_amount, who=who,
                                      uow=deps.uow(), scopes=deps.scopes, clock=deps.clock,
                                      ids=deps.ids, policy=deps.policy)


async def test_what_if_gives_the_tier_the_rebate_so_far_and_the_way_to_the_next_tier():
    deps, _ = await _world()
    await accept(deps, "u1", "d1", [sale("u1", 2, "d1", "h1", 12, 120_000, FEB)])
    ladder = await create(deps, program("ladder", (Tier(10, 100), Tier(30, 300), Tier(60, 500))))
    now = (await _what_if(deps, ladder.id)).answer
    assert (now.current_volume.quantity, now.current.tier, now.current.rate_bps,
            now.current.rebate_minor) == (12, 1, 100, 1_200)
    # 18 more units (at d1's 10,000 a unit so far) reach tier 2, which pays 3% on all.
    assert (now.to_next_quantity, now.to_next_amount_minor, now.next_rate_bps,
            now.rebate_at_next_minor) == (18, 180_000, 300, 9_000)
    more = (await _what_if(deps, ladder.id, more=20)).answer
    assert (more.projected_volume.quantity, more.projected.tier,
            more.projected.rebate_minor) == (32, 2, 9_600)
    assert (more.to_next_quantity, more.next_rate_bps, more.rebate_at_next_minor) == (
        28, 500, 30_000)
    top = (await _what_if(deps, ladder.id, more=100)).answer
    assert (top.projected.tier, top.to_next_quantity, top.next_rate_bps) == (3, 0, 0)


async def test_what_if_on_amounts_with_marginal_bands_and_a_cap():
    deps, _ = await _world()
    await accept(deps, "u1", "d1", [sale("u1", 2, "d1", "h1", 12, 120_000, FEB)])
    bands = await create(deps, program("bands", (Tier(0, 100), Tier(200_000, 200)),
                                       basis=Basis.AMOUNT, threshold=Threshold.AMOUNT,
                                       mode=Mode.MARGINAL, cap=2_300))
    found = await _what_if(deps, bands.id, more_amount=100_000)
    answer = found.answer
    assert (answer.current.tier, answer.current.rebate_minor) == (1, 1_200)
    # 220,000: 200,000 at 1% + 20,000 at 2% = 2,400, capped at 2,300.
    assert (answer.projected.tier, answer.projected.rebate_minor, answer.projected.capped) == (
        2, 2_300, True)
    assert (found.period.label, found.program.version) == ("2026-Q1", 1)
    below = (await _what_if(deps, bands.id)).answer
    assert (below.to_next_quantity, below.to_next_amount_minor, below.next_rate_bps,
            below.rebate_at_next_minor) == (0, 80_000, 200, 2_000)


async def test_what_if_answers_dealers_about_themselves_only():
    deps, _ = await _world(d1={"tags": ("VIP",)}, d2={})
    vip = await create(deps, program("VIP", (Tier(10, 100),), audience=audience_tag("VIP")))
    d1, d2 = dealer_staff("d1"), dealer_staff("d2")
    deps.scopes.allow(d1, ["d1"])
    deps.scopes.allow(d2, ["d2"])
    assert (await _what_if(deps, vip.id, who=d1)).answer.current.tier == 0
    with pytest.raises(NotFound):
        await _what_if(deps, vip.id, "d1", who=d2)          # another dealer
    with pytest.raises(NotFound):
        await _what_if(deps, vip.id, "d2", who=d2)          # not in the program
    with pytest.raises(InvalidArgument) as outside:
        await _what_if(deps, vip.id, on=date(2026, 7, 1))
    assert outside.value.violations[0].field == "on"
    with pytest.raises(InvalidArgument):
        await _what_if(deps, vip.id, more=-1)
