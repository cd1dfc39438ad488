"""Reports on in-memory collaborators: accrued commission and rebates (and what of them is
settled) per dealer, channel manager, region and month, over the viewer's dealers."""

from __future__ import annotations

from datetime import date

import pytest

from services.incentive.domain.tiers import Tier
from services.incentive.usecases import accruals
from shared.errors import InvalidArgument
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    FINANCE,
    accept,
    close,
    create,
    dealer_staff,
    hq_sees_everything,
    program,
    sale,
)


async def _world():
    """d1 (east) and d2 (south) at the default 2%; manager m1 follows d1, m2 both; a
    monthly program pays d1 1% on February."""
    deps, uow = fake_deps(rate_bps=200)
    hq_sees_everything(deps)
    await uow.dealers.put(dealer("d1", region_code="east"))
    await uow.dealers.put(dealer("d2", region_code="south"))
    for manager, dealer_id in (("m1", "d1"), ("m2", "d1"), ("m2", "d2")):
        await uow.dealers.assign(manager, dealer_id, "A系列", True)
    await accept(deps, "u1", "d1", [sale("u1", 2, "d1", "h1", 10, 100_000, date(2026, 1, 10))])
    await accept(deps, "u2", "d2", [sale("u2", 2, "d2", "h1", 5, 50_000, date(2026, 1, 20))])
    await create(deps, program("Feb", (Tier(1, 100),), period="2026-02"))
    await accept(deps, "u3", "d1", [sale("u3", 2, "d1", "h1", 20, 200_000, date(2026, 2, 3))])
    return deps, uow


async def _report(deps, group_by: str, who=ADMIN, start=None, end=None):
    rows, total = await accruals.report(group_by, start, end, who=who, uow=deps.uow(),
                                        scopes=deps.scopes)
    return {r.key: (r.commission_minor, r.rebate_minor, r.settled_minor, len(r.dealers))
            for r in rows}, total


async def test_reports_sum_per_dealer_region_manager_and_month():
    deps, _ = await _world()
    by_dealer, total = await _report(deps, "dealer")
    assert by_dealer == {"d1": (6_000, 2_000, 0, 1), "d2": (1_000, 0, 0, 1)}
    assert (total.commission_minor, total.rebate_minor, len(total.dealers)) == (7_000, 2_000, 2)
    assert (await _report(deps, "region"))[0] == {"east": (6_000, 2_000, 0, 1),
                                                  "south": (1_000, 0, 0, 1)}
    assert (await _report(deps, "channel_manager"))[0] == {"m1": (6_000, 2_000, 0, 1),
                                                           "m2": (7_000, 2_000, 0, 2)}
    assert (await _report(deps, "period"))[0] == {"2026-01": (3_000, 0, 0, 2),
                                                  "2026-02": (4_000, 2_000, 0, 1)}
    february = (await _report(deps, "dealer", start=date(2026, 2, 1), end=date(2026, 2, 28)))[0]
    assert february == {"d1": (4_000, 2_000, 0, 1)}
    with pytest.raises(InvalidArgument):
        await _report(deps, "product")


async def test_reports_show_what_is_settled_and_only_the_viewers_dealers():
    deps, _ = await _world()
    await close(deps, "2026-01")
    by_dealer, _ = await _report(deps, "dealer", who=FINANCE)
    assert by_dealer == {"d1": (6_000, 2_000, 2_000, 1), "d2": (1_000, 0, 1_000, 1)}
    d2 = dealer_staff("d2")
    deps.scopes.allow(d2, ["d2"])
    mine, total = await _report(deps, "region", who=d2)
    assert mine == {"south": (1_000, 0, 1_000, 1)} and total.commission_minor == 1_000
    assert (await _report(deps, "channel_manager", who=d2))[0] == {"m2": (1_000, 0, 1_000, 1)}
    nobody = dealer_staff("d9")
    assert (await _report(deps, "dealer", who=nobody))[0] == {}
