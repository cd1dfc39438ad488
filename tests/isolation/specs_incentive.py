"""Isolation specs for the incentive service's gateway routes: accruals, commission rules
(a dealer's override is its own business), rebate programs and the what-if (a program
is seen by those who see a dealer in its audience), targets and achievement, reports,
statements and their export, and HQ's writes — refused to every other role, and NOT_FOUND
where they name a dealer the caller does not see. See spec.py for the format."""

from __future__ import annotations

import calendar
import itertools

from shared.events.flow import FLOW_UPLOAD_ACCEPTED
from tests.harness import eventually
from tests.incentive.support import FlowPublisher, accepted, flow_row
from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.specs_order import _approved_order
from tests.isolation.world import TENANTS, IsolationWorld
from tests.world import STAFF_PASSWORD

ADMIN = only("admin")
SETTLERS = only("finance", "admin")
_numbers = itertools.count(1)


async def _admin(world: IsolationWorld, method: str, path: str, **kwargs) -> dict:
    async with world.client("admin") as admin:
        response = await admin.request(method, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()


# ------------------------------------------------------------------------- accruals
async def accrual_of(world: IsolationWorld, tenant: str) -> dict:
    """The commission accrued for the tenant's approved order, under a rule whose base
    is approved orders (waits for the event to land)."""
    key = f"accrual:{tenant}"
    if "accrual:rule" not in world.cache:
        await _admin(world, "POST", "/api/v1/commission-rules", json={"rule": {
            "name": "isolation orders", "base": "approved_orders", "base_rate_bps": 100,
            "valid_from": "2000-01-01"}})
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


async def _report(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await accrual_of(world, tenant)
        return None
    return Call(params={"group_by": "dealer"})


# ------------------------------------------------------------------ commission rules
async def _overrides(world: IsolationWorld, tenant: str) -> Call | None:
    """One rule with an override (a negotiated rate) for each tenant."""
    if "incentive:overrides" not in world.cache:
        await _admin(world, "POST", "/api/v1/commission-rules", json={"rule": {
            "name": "隔离 特批费率", "product_line": "ISO系列", "base_rate_bps": 100,
            "valid_from": "2027-01-01", "overrides": [
                {"dealer_id": world.dealer_ids[t], "rate_bps": 300 + i, "reason": "特批"}
                for i, t in enumerate(TENANTS)]}})
        world.cache["incentive:overrides"] = True
    return None if tenant else Call(params={"page_size": 500})


def _override_items(body: dict) -> list[dict]:
    return [o for rule in body["rules"] for o in rule["overrides"] if o["dealer_id"]]


async def _new_rule(world: IsolationWorld, tenant: str) -> Call:
    """A new rule with an override for the tenant's dealer (its own product line)."""
    line = f"ISO-R-{next(_numbers)}"
    return Call(json={"rule": {"name": f"隔离 {line}", "product_line": line,
                               "base_rate_bps": 100, "valid_from": "2027-01-01",
                               "overrides": [{"dealer_id": world.dealer_ids[tenant],
                                              "rate_bps": 500}]}})


async def _no_rule(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        listed = await admin.get("/api/v1/commission-rules",
                                 params={"product_line": call.json["rule"]["product_line"]})
    return listed.json()["rules"] == []


# -------------------------------------------------------------------------- programs
# Each tenant's program has an audience of exactly that dealer.
AUDIENCES = {
    "east": {"all_of": {"expressions": [{"term": {"tier": "one"}},
                                        {"term": {"region_code": "east"}}]}},
    "south": {"term": {"region_code": "south"}},
    "platform": {"term": {"tier": "platform"}},
    "sub": {"term": {"tier": "two"}},
}


def _program(name: str, audience: dict | None = None, period: str = "2027-01") -> dict:
    year, month = map(int, period.split("-"))
    body = {"name": name, "product_lines": ["A系列"], "period": "month",
            "period_start": f"{period}-01",
            "period_end": f"{period}-{calendar.monthrange(year, month)[1]}",
            "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
            "tiers": [{"min_quantity": 1, "rate_bps": 100}]}
    if audience:
        body["audience"] = audience
    return body


async def program_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"incentive:program:{tenant}"
    if key not in world.cache:
        created = await _admin(world, "POST", "/api/v1/rebate-programs", json={
            "program": _program(f"隔离方案 {tenant}", AUDIENCES[tenant])})
        assert created["dealer_count"] == 1, created
        world.cache[key] = created["program"]
        world.cache.setdefault("incentive:program_dealers", {})[
            created["program"]["id"]] = world.dealer_ids[tenant]
    return world.cache[key]


async def _programs(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await program_of(world, tenant)
        return None
    return Call(params={"page_size": 500})


def _program_dealer(world: IsolationWorld, item: dict) -> str:
    return world.cache.get("incentive:program_dealers", {}).get(item["id"], "")


async def _one_program(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"program_id": (await program_of(world, tenant))["id"]})


async def _what_if(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"program_id": (await program_of(world, tenant))["id"]},
                params={"dealer_id": world.dealer_ids[tenant], "on": "2027-01-15",
                        "additional_quantity": 3})


async def _create_program(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(json={"program": _program("隔离 新方案", period="2027-02")})


async def _new_version(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        return None
    if "incentive:yearly" not in world.cache:
        created = await _admin(world, "POST", "/api/v1/rebate-programs", json={"program": {
            **_program("隔离 年度方案"), "period_start": "2027-01-01",
            "period_end": "2027-12-31"}})
        world.cache["incentive:yearly"] = created["program"]
    program = world.cache["incentive:yearly"]
    return Call(path_params={"program_id": program["id"]},
                json={"program": {**program, "tiers": [{"min_quantity": 1, "rate_bps": 200}]},
                      "effective_from": "2027-06-01"})


# --------------------------------------------------------------------------- targets
def _target(world: IsolationWorld, tenant: str, value: int) -> dict:
    return {"dealer_id": world.dealer_ids[tenant], "product_line": "A系列",
            "period": "2027-Q1", "measure": "sell_through_quantity", "value": value}


async def _targets(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        key = f"incentive:target:{tenant}"
        if key not in world.cache:
            await _admin(world, "PUT", "/api/v1/targets",
                         json={"targets": [_target(world, tenant, 100)]})
            world.cache[key] = True
        return None
    return Call(params={"page_size": 500})


async def _set_target(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"targets": [_target(world, tenant, 100)]})


# ----------------------------------------------------------------------- settlement
async def _october(world: IsolationWorld) -> dict[str, dict]:
    """Each tenant sold in October 2026 (flow's accepted upload); finance closed October:
    one statement per tenant."""
    if "incentive:october" not in world.cache:
        product = world.products[0]
        async with FlowPublisher(world.suite) as flow:
            for tenant in TENANTS:
                dealer = world.dealer_ids[tenant]
                await flow.publish(FLOW_UPLOAD_ACCEPTED, accepted(f"ISO-U-{tenant}", dealer, [
                    flow_row(2, dealer, "h-iso", 1, 10_000, "2026-10-15", product=product)]),
                    f"ISO-U-{tenant}")
        for tenant in TENANTS:
            async def accrued(tenant=tenant):
                async with world.client("admin") as admin:
                    return (await admin.get("/api/v1/accruals", params={
                        "source_id": f"ISO-U-{tenant}"})).json()["accruals"]

            await eventually(accrued, timeout=20)
        async with world.client("finance") as finance:
            response = await finance.post("/api/v1/settlement-periods",
                                          json={"period": "2026-10"})
            assert response.status_code == 201, response.text
            period_id = response.json()["id"]
        listed = await _admin(world, "GET", "/api/v1/settlements",
                              params={"settlement_period_id": period_id})
        world.cache["incentive:october"] = {world.tenant_of(s["dealer_id"]): s
                                            for s in listed["settlements"]}
    return world.cache["incentive:october"]


async def _settlements(world: IsolationWorld, tenant: str) -> Call | None:
    await _october(world)
    return None if tenant else Call(params={"page_size": 500})


async def _settlement(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"settlement_id": (await _october(world))[tenant]["id"]})


async def _close(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(json={"period": "2025-06"})


async def _approve(world: IsolationWorld, tenant: str) -> Call | None:
    """A run closed by a second finance user, so finance and admin may both approve it
    (the one who closed a run never does)."""
    if tenant:
        return None
    if "incentive:closed_by_other" not in world.cache:
        hq = (await _admin(world, "GET", "/api/v1/org-units", params={"kind": "hq"}))[
            "org_units"][0]["id"]
        await _admin(world, "POST", "/api/v1/users", json={
            "username": "iso.finance.two", "password": STAFF_PASSWORD, "roles": ["finance"],
            "org_unit_id": hq})
        token = await world.suite.login("iso.finance.two", STAFF_PASSWORD)
        async with world.suite.client(token) as other:
            response = await other.post("/api/v1/settlement-periods", json={"period": "2025-07"})
            assert response.status_code == 201, response.text
        world.cache["incentive:closed_by_other"] = response.json()["id"]
    return Call(path_params={"period_id": world.cache["incentive:closed_by_other"]})


async def _periods(world: IsolationWorld, tenant: str) -> Call | None:
    await _october(world)
    return None


async def _dealer_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                params={"period": "2027-Q1"})


async def _statement_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"dealer_id": world.dealer_ids[tenant]},
                params={"period_start": "2026-11-01", "period_end": "2026-11-30"})


def _no_items(body: dict) -> list[dict]:
    return []


def _none(world: IsolationWorld, item: dict) -> str:
    return ""


SPECS = [
    Endpoint("GET", "/api/v1/accruals", "list", _accruals, items=lambda body: body["accruals"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/accruals/{accrual_id}", "object", _accrual),
    Endpoint("GET", "/api/v1/incentive-reports", "list", _report,
             items=lambda body: body["rows"], dealer_of=lambda w, item: item["key"]),
    Endpoint("GET", "/api/v1/commission-rules", "list", _overrides, items=_override_items,
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("POST", "/api/v1/commission-rules", "object", _new_rule, permitted=ADMIN,
             ok=(201,), fresh=True, unchanged=_no_rule),
    Endpoint("GET", "/api/v1/rebate-programs", "list", _programs,
             items=lambda body: body["programs"], dealer_of=_program_dealer),
    Endpoint("GET", "/api/v1/rebate-programs/{program_id}", "object", _one_program),
    Endpoint("GET", "/api/v1/rebate-programs/{program_id}/what-if", "object", _what_if),
    # HQ's program writes name no dealer (audiences are tag expressions): every other
    # role is refused.
    Endpoint("POST", "/api/v1/rebate-programs", "list", _create_program, permitted=ADMIN,
             ok=(201,), items=_no_items, dealer_of=_none, complete=False),
    Endpoint("POST", "/api/v1/rebate-programs/{program_id}/versions", "list", _new_version,
             permitted=ADMIN, ok=(201,), items=_no_items, dealer_of=_none, complete=False),
    Endpoint("GET", "/api/v1/targets", "list", _targets, items=lambda body: body["targets"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("PUT", "/api/v1/targets", "object", _set_target, permitted=ADMIN),
    Endpoint("GET", "/api/v1/dealers/{dealer_id}/achievement", "object", _dealer_call),
    Endpoint("GET", "/api/v1/dealers/{dealer_id}/statement", "object", _statement_call),
    Endpoint("GET", "/api/v1/settlements", "list", _settlements,
             items=lambda body: body["settlements"], dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/settlements/{settlement_id}", "object", _settlement),
    Endpoint("GET", "/api/v1/settlements/{settlement_id}/export", "object", _settlement),
    # Settlement runs are company totals over every dealer: HQ's finance-wide roles only.
    Endpoint("GET", "/api/v1/settlement-periods", "list", _periods, permitted=SETTLERS,
             items=_no_items, dealer_of=_none, complete=False),
    # Closing names no dealer; of the two permitted callers the second finds the month
    # closed already (a period is closed once).
    Endpoint("POST", "/api/v1/settlement-periods", "list", _close, permitted=SETTLERS,
             ok=(201, 409), items=_no_items, dealer_of=_none, complete=False),
    Endpoint("POST", "/api/v1/settlement-periods/{period_id}/approve", "list", _approve,
             permitted=SETTLERS, items=_no_items, dealer_of=_none, complete=False),
]

EXEMPT: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/targets/import"): "HQ-admin-only bulk file: refused (403) to every "
                                        "other role before any row is looked at, so it "
                                        "tells nobody else anything of a dealer "
                                        "(tests/incentive/test_gateway.py, "
                                        "tests/service/incentive/test_targets.py)",
}
