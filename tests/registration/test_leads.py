"""The HQ lead pool (公海) end to end: dealers projected from identity's events, leads
auto-assigned by territory, claimed, released and reassigned through the gateway, with
the events on the bus. The assignment rule, deadlines and imports are tested on the use
cases in tests/service/registration/."""

from __future__ import annotations

from tests.harness import eventually
from tests.registration.helpers import EventLog, add_dealer


async def _probe_until_projected(hq, dealer_id: str) -> None:
    """Identity's dealer events reach registration asynchronously: enter probe leads in
    the platform dealer's district until one is assigned to it."""
    async def probe():
        response = await hq.post("/api/v1/leads", json={
            "customer_name": "探针医院", "address": "上海市徐汇区某路1号", "product_line": "A系列"})
        assert response.status_code == 201, response.text
        return response.json()["assigned_dealer_id"] == dealer_id

    await eventually(probe, timeout=15, interval=0.3)


async def test_leads_assigned_claimed_released(suite, world):
    d1, d2 = world.dealers
    async with suite.client(world.admin_token) as hq:
        platform = await add_dealer(suite, world, "上海徐汇平台商有限公司", ["310104"], ["A系列"],
                                    tier="platform", serial=60)
        await _probe_until_projected(hq, platform)
        async with EventLog(suite) as events:
            # 静安 is outside the platform dealer's territory: tier-one dealers, least loaded.
            first = (await hq.post("/api/v1/leads", json={
                "customer_name": "上海市第十人民医院", "address": "上海市静安区延长中路301号",
                "product_line": "A系列", "contact_name": "王主任",
                "contact_phone": "021-66300588"})).json()
            second = (await hq.post("/api/v1/leads", json={
                "customer_name": "上海市静安区中心医院", "address": "上海市静安区西康路259号",
                "product_line": "A系列"})).json()
            assert first["status"] == "assigned" and second["status"] == "assigned"
            assert {first["assigned_dealer_id"], second["assigned_dealer_id"]} == {d1.id, d2.id}
            assert first["claim_deadline"]
            # nobody covers Beijing: the lead waits in the pool
            pool = (await hq.post("/api/v1/leads", json={
                "customer_name": "北京大学第三医院", "address": "北京市海淀区花园北路49号",
                "product_line": "A系列"})).json()
            assert pool["status"] == "pool" and pool["assigned_dealer_id"] == ""
            notified = await events.wait_for(
                "dealer.notified", lambda p: p.kind == "lead.assigned" and p.lead_id == first["id"])
            assert notified[0].dealer_id == first["assigned_dealer_id"]

        owner = d1 if first["assigned_dealer_id"] == d1.id else d2
        other = d2 if owner is d1 else d1
        async with suite.client(owner.token) as dealer, suite.client(other.token) as stranger:
            # claiming a lead assigned to someone else
            response = await stranger.post(f"/api/v1/leads/{first['id']}/claim", json={})
            assert response.status_code == 404
            mine = (await dealer.get("/api/v1/leads")).json()["leads"]
            assert first["id"] in {lead["id"] for lead in mine}
            assert pool["id"] not in {lead["id"] for lead in mine}
            response = await dealer.post(f"/api/v1/leads/{first['id']}/claim", json={})
            assert response.status_code == 200, response.text
            claimed = response.json()
            assert claimed["lead"]["status"] == "claimed"
            registration = claimed["registration"]
            assert registration["status"] == "approved"
            assert registration["source"] == "hq_lead"
            assert registration["lead_id"] == first["id"]
            assert registration["protected_until"]
            again = await dealer.post(f"/api/v1/leads/{first['id']}/claim", json={})
            assert again.status_code == 409

            # the other dealer gives its lead back
            response = await stranger.post(f"/api/v1/leads/{second['id']}/release",
                                           json={"reason": "没有资源"})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "pool"
            assert response.json()["return_count"] == 1

        # HQ reassigns by hand; outside the dealer's territory is refused
        response = await hq.post(f"/api/v1/leads/{second['id']}/assign",
                                 json={"dealer_id": owner.id})
        assert response.json()["assigned_dealer_id"] == owner.id
        response = await hq.post(f"/api/v1/leads/{pool['id']}/assign",
                                 json={"dealer_id": owner.id})
        assert response.status_code == 409
        assert response.json()["reason"] == "OUTSIDE_TERRITORY"

        # dealers do not enter leads
        async with suite.client(owner.token) as dealer:
            assert (await dealer.post("/api/v1/leads", json={
                "customer_name": "x医院", "address": "上海市静安区", "product_line": "A系列"})
                    ).status_code == 403
