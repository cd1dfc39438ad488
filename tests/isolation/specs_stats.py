"""Isolation specs for the dashboards' figures (/api/v1/stats/...): grouped by dealer,
every row belongs to a dealer the caller sees, and every dealer it sees that has
figures is there (a dealer's own approved order, stock shipped to it, its accrual). The
same figures without the dealer grouping are sums over exactly these rows."""

from __future__ import annotations

from tests.isolation.spec import Call, Endpoint
from tests.isolation.specs_incentive import accrual_of
from tests.isolation.specs_order import _approved_order, shipment_of
from tests.isolation.world import IsolationWorld


async def _approved(world: IsolationWorld, tenant: str) -> None:
    key = f"stats:order:{tenant}"
    if key not in world.cache:
        world.cache[key] = await _approved_order(world, tenant)


def _rows(key: str):
    return lambda body: body[key]


def _dealer(world: IsolationWorld, item: dict) -> str:
    return item["dealer_id"]


async def _orders_by_dealer(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _approved(world, tenant)
        return None
    return Call(params={"group_by": ["dealer", "month"]})


async def _ranking(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _approved(world, tenant)
        return None
    return Call(params={"limit": 100})


async def _inventory_by_dealer(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await shipment_of(world, tenant)
        return None
    return Call(params={"group_by": "dealer"})


async def _rebates_by_dealer(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await accrual_of(world, tenant)
        return None
    return Call(params={"group_by": "dealer"})


SPECS = [
    Endpoint("GET", "/api/v1/stats/orders", "list", _orders_by_dealer,
             items=_rows("rows"), dealer_of=_dealer),
    Endpoint("GET", "/api/v1/stats/dealer-ranking", "list", _ranking,
             items=_rows("dealers"), dealer_of=_dealer),
    Endpoint("GET", "/api/v1/stats/channel-inventory", "list", _inventory_by_dealer,
             items=_rows("products"), dealer_of=_dealer),
    Endpoint("GET", "/api/v1/stats/rebates", "list", _rebates_by_dealer,
             items=_rows("dealers"), dealer_of=_dealer),
]

EXEMPT: dict = {}
