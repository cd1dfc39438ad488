"""Isolation specs for the order service's gateway routes (first cut, written with the
identity work for the routes that existed then; the order engineer owns this file and
adds every new order route here). See spec.py for the format."""

from __future__ import annotations

import itertools

from tests.isolation.spec import Call, Endpoint
from tests.isolation.world import IsolationWorld

_refs = itertools.count(1)


def _order_body(world: IsolationWorld, tenant: str) -> dict:
    return {"dealer_id": world.dealer_ids[tenant],
            "lines": [{"product_code": world.products[0]["code"], "quantity": 1}],
            "client_order_ref": f"ISO-{tenant}-{next(_refs)}"}


async def order_of(world: IsolationWorld, tenant: str) -> dict:
    """One order per tenant, submitted by the tenant's own staff (cached)."""
    key = f"order:{tenant}"
    if key not in world.cache:
        async with world.client(world.staff_of[tenant]) as staff:
            response = await staff.post("/api/v1/orders", json=_order_body(world, tenant))
            assert response.status_code == 201, response.text
            world.cache[key] = response.json()
    return world.cache[key]


async def _submit(world: IsolationWorld, tenant: str) -> Call:
    return Call(json=_order_body(world, tenant))


async def _order(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"order_id": (await order_of(world, tenant))["id"]})


async def _orders(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await order_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


SPECS = [
    # Anyone whose scope holds the dealer may order for it; 409 is the order rules (e.g.
    # credit) answering, which still reveals nothing of another tenant.
    Endpoint("POST", "/api/v1/orders", "object", _submit, ok=(201, 409)),
    Endpoint("GET", "/api/v1/orders", "list", _orders, items=lambda body: body["orders"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/orders/{order_id}", "object", _order),
]

EXEMPT = {
    ("GET", "/api/v1/products"): "the catalog is shared by every dealer, owned by none",
    ("GET", "/api/v1/products/{code}"): "the catalog is shared by every dealer, owned by none",
    ("PUT", "/api/v1/products"): "catalog upkeep (HQ/ERP); no dealer's data",
}
