"""A rebate from the goods to the money, every step through the real services: the ERP
ships a batch over order's gRPC ingest, the dealer reports its sale to a registered
hospital in a flow file through the gateway, flow accepts it and incentive accrues the
commission and the tiered rebate (the dealer's what-if reads it back), finance closes
the month, another person approves the statement, incentive publishes RebateCredited
and order books the credit on the dealer's account."""

from __future__ import annotations

from tests.flow.support import build_flow_world, caught_up, csv_bytes, finished, ship, upload
from tests.harness import eventually
from tests.order.support import STAFF_PASSWORD

MARCH = ("2026-03-01", "2026-03-31")


def _net(accruals: list[dict], kind: str) -> int:
    return sum(a["amount"]["amount_minor"] for a in accruals if a["kind"] == kind)


async def _outstanding(flow, token: str, dealer_id: str) -> int:
    async with flow.suite.client(token) as client:
        response = await client.get(f"/api/v1/dealer-accounts/{dealer_id}")
    assert response.status_code == 200, response.text
    return response.json()["outstanding"]["amount_minor"]


async def test_shipped_goods_sold_through_are_credited_to_the_dealers_account(suite):
    flow = await build_flow_world(suite)
    dealer_id = flow.dealers["a"]
    finance = await suite.login("flow.fin.user", STAFF_PASSWORD)
    try:
        async with flow.client("admin") as admin:
            response = await admin.post("/api/v1/commission-rules", json={"rule": {
                "name": "A系列 流向佣金", "product_line": "A系列", "base_rate_bps": 100,
                "valid_from": "2026-01-01"}})
            assert response.status_code == 201, response.text
            response = await admin.post("/api/v1/rebate-programs", json={"program": {
                "name": "三月 A系列 阶梯返利", "product_lines": ["A系列"], "period": "month",
                "period_start": MARCH[0], "period_end": MARCH[1],
                "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
                "tiers": [{"min_quantity": 5, "rate_bps": 200},
                          {"min_quantity": 20, "rate_bps": 500}]}})
            assert response.status_code == 201, response.text
            program = response.json()["program"]

        await ship(flow, "a", [{"product": "A-001", "batch": "R1", "quantity": 30}])
        await caught_up(suite)
        content = csv_bytes([
            ["2026-03-05", "瑞金医院", "心内科", "A-001", "", "R1", "", "", "6", "600.00"],
            ["2026-03-12", "复旦大学附属中山医院", "ICU", "A-001", "", "R1", "", "", "4",
             "400.00"]])
        queued = await upload(flow, "a", content, filename="三月流向.csv",
                              params={"period_start": MARCH[0], "period_end": MARCH[1]})
        done = await finished(flow, queued["id"], key="a")
        assert done["status"] == "accepted", done
        assert done["total_quantity"] == 10

        # 1,000 yuan sold: 1% commission (1,000.00 → 10.00) and tier 1 of the program
        # (10 units ≥ 5) at 2% (20.00).
        async def accrued():
            async with flow.client("a") as client:
                response = await client.get("/api/v1/accruals", params={"period": "2026-03"})
            found = response.json()["accruals"]
            return found if (_net(found, "commission"), _net(found, "rebate")) == (
                1_000, 2_000) else None

        accruals = await eventually(accrued, timeout=30)
        assert {a["dealer_id"] for a in accruals} == {dealer_id}
        assert {a["source_id"] for a in accruals if a["kind"] == "commission"} == {
            f"{queued['id']}#0"}
        async with flow.client("a") as client:
            response = await client.get(f"/api/v1/rebate-programs/{program['id']}/what-if",
                                        params={"dealer_id": dealer_id, "on": "2026-03-20"})
        assert response.status_code == 200, response.text
        what_if = response.json()
        assert (what_if["current"]["volume_quantity"], what_if["current"]["tier_number"],
                what_if["quantity_to_next_tier"], what_if["next_tier_rate_bps"]) == (
            10, 1, 10, 500)

        # The dashboard's sell-through for March: the dealer's 10 units, 1,000 yuan.
        async with flow.client("a") as client:
            response = await client.get("/api/v1/stats/orders", params={
                "from_month": "2026-03", "to_month": "2026-03", "group_by": ["dealer"]})
        assert response.status_code == 200, response.text
        assert [(r["dealer_id"], r["sell_through_quantity"],
                 r["sell_through_amount"]["amount_minor"]) for r in response.json()["rows"]
                ] == [(dealer_id, 10, 100_000)]

        before = await _outstanding(flow, finance, dealer_id)
        async with suite.client(finance) as client:
            response = await client.post("/api/v1/settlement-periods",
                                         json={"period": "2026-03"})
            assert response.status_code == 201, response.text
            period = response.json()
        async with flow.client("a") as client:
            response = await client.get("/api/v1/settlements",
                                        params={"settlement_period_id": period["id"]})
            [statement] = response.json()["settlements"]
        assert statement["dealer_id"] == dealer_id
        assert statement["total"]["amount_minor"] == 3_000
        lines = {line["kind"]: line for line in statement["lines"]}
        assert lines.keys() == {"commission", "rebate"}
        assert lines["rebate"]["sources"] == [f"flow_upload:{queued['id']}#0"]
        # Approval is someone else's (four eyes); then the money moves exactly once.
        async with flow.client("admin") as admin:
            response = await admin.post(f"/api/v1/settlement-periods/{period['id']}/approve")
            assert response.status_code == 200, response.text
            assert response.json()["period"]["status"] == "settled"

        async def credited():
            return await _outstanding(flow, finance, dealer_id) == before - 3_000

        await eventually(credited, timeout=30)
    finally:
        await flow.close()
