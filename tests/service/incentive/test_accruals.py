"""Commission accrual and its visibility, on in-memory collaborators (no I/O)."""

from __future__ import annotations

import pytest

from services.incentive.usecases import accruals
from shared.context import Principal
from shared.errors import NotFound
from shared.events.incentive import ACCRUAL_RECORDED
from shared.money import Money
from shared.pagination import PageRequest
from tests.service.incentive.fakes import fake_deps

DEALER_A = Principal(subject="user:a", roles=frozenset({"dealer_sales"}), dealer_id="d-a")
DEALER_B = Principal(subject="user:b", roles=frozenset({"dealer_sales"}), dealer_id="d-b")


async def accrue(deps, order_id: str, dealer_id: str, total: int, event_id: str = "e-1"):
    return await accruals.accrue_commission(
        accruals.OrderFacts(order_id, dealer_id, Money(total)), event_id=event_id,
        uow=deps.uow(), rule=deps.commission, clock=deps.clock, ids=deps.ids)


async def test_commission_is_booked_once_per_order_and_published():
    deps, uow = fake_deps(rate_bps=250)
    first = await accrue(deps, "o-1", "d-a", 50_000)
    again = await accrue(deps, "o-1", "d-a", 50_000, event_id="e-2")
    assert again == first
    assert (first.amount, first.rate_bps) == (Money(1_250), 250)
    [published] = uow.published_of(ACCRUAL_RECORDED)
    assert (published.accrual.id, published.accrual.amount.amount_minor) == (first.id, 1_250)


async def test_a_dealer_sees_only_its_own_accruals():
    deps, _ = fake_deps()
    mine = await accrue(deps, "o-1", "d-a", 10_000)
    await accrue(deps, "o-2", "d-b", 20_000, event_id="e-2")
    deps.scopes.allow(DEALER_A, ["d-a"])
    page = await accruals.list_accruals("", "", PageRequest(), who=DEALER_A, uow=deps.uow(),
                                        scopes=deps.scopes)
    assert [a.id for a in page.items] == [mine.id] and page.total == 1
    # Asking for another dealer's list shows nothing rather than an error.
    other = await accruals.list_accruals("d-b", "", PageRequest(), who=DEALER_A,
                                         uow=deps.uow(), scopes=deps.scopes)
    assert other.items == []
    with pytest.raises(NotFound):
        await accruals.get_accrual(mine.id, who=DEALER_B, uow=deps.uow(), scopes=deps.scopes)
