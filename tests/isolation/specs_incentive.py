"""Isolation specs for the incentive service's gateway routes (first cut, written with
the identity work; the incentive engineer owns this file and adds new routes here). See
spec.py for the format."""

from __future__ import annotations

from tests.harness import eventually
from tests.isolation.spec import Call, Endpoint
from tests.isolation.specs_order import order_of
from tests.isolation.world import IsolationWorld


async def accrual_of(world: IsolationWorld, tenant: str) -> dict:
    """The commission accrued for the tenant's order (waits for the event to land)."""
    key = f"accrual:{tenant}"
    if key not in world.cache:
        order = await order_of(world, tenant)

        async def accrued():
            async with world.client("admin") as admin:
                body = (await admin.get("/api/v1/accruals",
                                        params={"source_id": order["id"]})).json()
            return body["accruals"]

        world.cache[key] = (await eventually(accrued, timeout=15))[0]
    return world.cache[key]


async def _accrual(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"accrual_id": (await accrual_of(world, tenant))["id"]})


async def _accruals(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await accrual_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


SPECS = [
    Endpoint("GET", "/api/v1/accruals", "list", _accruals, items=lambda body: body["accruals"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/accruals/{accrual_id}", "object", _accrual),
]

EXEMPT: dict[tuple[str, str], str] = {}
