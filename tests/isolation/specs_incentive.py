"""Isolation specs for the incentive service's gateway routes (first cut, written with
the identity work; the incentive engineer owns this file and adds new routes here). See
spec.py for the format."""

from __future__ import annotations

from tests.harness import eventually
from tests.isolation.spec import Call, Endpoint
from tests.isolation.specs_order import _approved_order
from tests.isolation.world import IsolationWorld


async def accrual_of(world: IsolationWorld, tenant: str) -> dict:
    """The commission accrued for the tenant's approved order, under a rule whose base
    is approved orders (waits for the event to land)."""
    key = f"accrual:{tenant}"
    if "accrual:rule" not in world.cache:
        async with world.client("admin") as admin:
            response = await admin.post("/api/v1/commission-rules", json={"rule": {
                "name": "isolation orders", "base": "COMMISSION_BASE_APPROVED_ORDERS",
                "baseRateBps": 100, "validFrom": "2000-01-01"}})
            assert response.status_code == 201, response.text
        world.cache["accrual:rule"] = True
    if key not in world.cache:
        order = await _approved_order(world, tenant)

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


async def _dealer_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                params={"period": "2026-Q1"})


async def _statement_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                params={"period_start": "2026-01-01", "period_end": "2026-03-31"})


SPECS += [
    Endpoint("GET", "/api/v1/dealers/{dealer_id}/achievement", "object", _dealer_call),
    Endpoint("GET", "/api/v1/dealers/{dealer_id}/statement", "object", _statement_call),
]

_HQ_ONLY = ("HQ configuration (rules, programs, targets, settlement runs) is refused to "
            "every role but HQ admin or finance by the service; it names no dealer's data")
EXEMPT.update({
    ("GET", "/api/v1/commission-rules"): "commission rules are HQ's, shared by every dealer",
    ("POST", "/api/v1/commission-rules"): _HQ_ONLY,
    ("POST", "/api/v1/rebate-programs"): _HQ_ONLY,
    ("POST", "/api/v1/rebate-programs/{program_id}/versions"): _HQ_ONLY,
    ("PUT", "/api/v1/targets"): _HQ_ONLY,
    ("POST", "/api/v1/targets/import"): _HQ_ONLY,
    ("POST", "/api/v1/settlement-periods"): _HQ_ONLY,
    ("POST", "/api/v1/settlement-periods/{period_id}/approve"): _HQ_ONLY,
    ("GET", "/api/v1/settlement-periods"): "period totals only, listed to HQ-wide roles; "
                                           "per-dealer statements are /settlements",
    ("GET", "/api/v1/rebate-programs"): "NOT YET COVERED: filtered by the viewer's scope in "
                                        "the service (programs whose audience it sees)",
    ("GET", "/api/v1/rebate-programs/{program_id}"): "NOT YET COVERED: NOT_FOUND outside the "
                                                     "audience the viewer sees",
    ("GET", "/api/v1/rebate-programs/{program_id}/what-if"): "NOT YET COVERED: the dealer is "
                                                             "checked against the scope",
    ("GET", "/api/v1/targets"): "NOT YET COVERED: filtered by the viewer's scope",
    ("GET", "/api/v1/incentive-reports"): "NOT YET COVERED: sums over the viewer's scope",
    ("GET", "/api/v1/settlements"): "NOT YET COVERED: filtered by the viewer's scope",
    ("GET", "/api/v1/settlements/{settlement_id}"): "NOT YET COVERED: NOT_FOUND outside scope",
    ("GET", "/api/v1/settlements/{settlement_id}/export"): "NOT YET COVERED: as the statement",
})
