"""The dashboards' endpoints through the gateway on real services: approved orders by
region (named, not coded) and month, the dealer ranking, channel inventory by product,
commissions accrued against settled by month; each within the caller's scope, a bad
month refused naming the field; the registration funnel by region shows the region's
name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite, eventually
from tests.incentive.support import orders_accrue_at_once
from tests.order.support import Erp, add_staff, shipment
from tests.world import build_world


async def _get(suite, token: str, path: str, **params) -> dict:
    async with suite.client(token) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def check_dashboard_figures(suite: Suite) -> None:
    world = await build_world(suite)
    staff = await add_staff(suite, world, prefix="stats.")
    await orders_accrue_at_once(suite, world)
    first, second = world.dealers
    orders = {}
    for dealer, quantity in ((first, 4), (second, 1)):
        async with suite.client(dealer.token) as client:
            response = await client.post("/api/v1/orders", json={
                "client_order_ref": f"STATS-{quantity}",
                "lines": [{"product_code": "A-001", "quantity": quantity}]})
            assert response.status_code == 201, response.text
            orders[dealer.id] = response.json()
            assert orders[dealer.id]["status"] == "approved", orders[dealer.id]
    amount = {dealer_id: order["total"]["amount_minor"] for dealer_id, order in orders.items()}
    month = datetime.now(UTC).strftime("%Y-%m")
    admin = world.admin_token

    by_region = await _get(suite, admin, "/api/v1/stats/orders")
    assert by_region["rows"] == [{
        "region_code": "east", "label": "华东", "month": month, "order_count": 2,
        "order_amount": {"amount_minor": sum(amount.values()), "currency": "CNY"},
        "sell_through_quantity": 0, "sell_through_amount": {"amount_minor": 0,
                                                            "currency": "CNY"}}]
    mine = await _get(suite, first.token, "/api/v1/stats/orders", group_by=["dealer"])
    assert [(r["dealer_id"], r["order_amount"]["amount_minor"]) for r in mine["rows"]] == [
        (first.id, amount[first.id])]
    ranking = await _get(suite, admin, "/api/v1/stats/dealer-ranking", limit=5)
    assert [d["dealer_id"] for d in ranking["dealers"]] == [first.id, second.id]
    assert ranking["dealers"][0]["name"] == "上海医疗器械经销商1号有限公司"
    async with suite.client(admin) as client:
        bad = await client.get("/api/v1/stats/orders", params={"from_month": "2026-13"})
    assert bad.status_code == 400, bad.text
    assert [e["field"] for e in bad.json()["errors"]] == ["from_month"]

    erp = Erp(suite, staff.erp_token)
    try:
        order = orders[first.id]
        reply = await erp.ship([shipment("STATS-SHIP-1", first.id, [
            {"order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
             "quantity": 4, "batch": "S1"}])])
        assert reply.summary.rejected == 0, reply
    finally:
        await erp.close()

    async def stocked():
        body = await _get(suite, admin, "/api/v1/stats/channel-inventory")
        return body["products"] or None

    [stock] = await eventually(stocked)
    assert (stock["product_code"], stock["quantity_received"], stock["quantity_on_hand"],
            stock["dealer_count"]) == ("A-001", 4, 4, 1)
    assert stock["name"] == world.products[0]["name"]
    assert (await _get(suite, second.token, "/api/v1/stats/channel-inventory"))["products"] == []

    # The rule pays 2% of each approved order, accrued and not yet settled.
    async def accrued():
        body = await _get(suite, admin, "/api/v1/stats/rebates")
        rows = [(m["month"], m["accrued"]["amount_minor"], m["settled"]["amount_minor"])
                for m in body["months"]]
        return rows if rows == [(month, sum(amount.values()) * 2 // 100, 0)] else None

    assert await eventually(accrued, timeout=20)
    theirs = await _get(suite, second.token, "/api/v1/stats/rebates", group_by="dealer")
    assert [d["dealer_id"] for d in theirs["dealers"]] == [second.id]

    registration = await _get_registration(suite, world, first)
    assert registration["status"] == "approved", registration
    funnel = await _get(suite, admin, "/api/v1/funnel", group_by="region")
    assert [(g["key"], g["label"]) for g in funnel["groups"]] == [("east", "华东")]


async def test_dashboard_figures_follow_the_facts_and_the_scope(suite):
    await check_dashboard_figures(suite)


@pytest.mark.postgres
async def test_dashboard_figures_on_postgres(tmp_path):
    """Months are cut in each database's dialect (strftime, to_char in UTC)."""
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await check_dashboard_figures(suite)
    finally:
        await suite.stop()


async def _get_registration(suite, world, dealer) -> dict:
    async with suite.client(dealer.token) as client:
        response = await client.post("/api/v1/registrations", json={
            "product_line": "A系列", "client_request_id": "stats-reg",
            "customer": {"name": "上海市第十人民医院", "address": "上海市静安区延长中路301号"}})
        assert response.status_code == 201, response.text
        created = response.json()
    async with suite.client(world.admin_token) as admin:
        response = await admin.post(f"/api/v1/registrations/{created['id']}/approve",
                                    json={"comment": "同意"})
        assert response.status_code == 200, response.text
    return response.json()
