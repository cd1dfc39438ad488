"""The funnel by region and product line, and a manual renewal of protection, through
the gateway."""

from __future__ import annotations

from datetime import datetime

from tests.registration.helpers import ZHONGSHAN, channel_manager, hospital_code

RUIJIN = {"name": "上海交通大学医学院附属瑞金医院", "address": "上海市黄浦区瑞金二路197号"}


async def test_funnel_groups_and_manual_renewal(suite, world):
    _, manager_token = await channel_manager(suite, world)
    first, second = world.dealers
    async with suite.client(first.token) as dealer1, suite.client(second.token) as dealer2, \
            suite.client(manager_token) as manager, suite.client(world.admin_token) as hq:
        registrations = []
        for client, customer in ((dealer1, {**ZHONGSHAN, "credit_code": hospital_code(11)}),
                                 (dealer2, {**RUIJIN, "credit_code": hospital_code(12)})):
            response = await client.post("/api/v1/registrations", json={
                "product_line": "A系列", "customer": customer})
            assert response.status_code == 201, response.text
            registration = response.json()
            response = await manager.post(
                f"/api/v1/registrations/{registration['id']}/approve", json={})
            assert response.status_code == 200, response.text
            registrations.append(response.json())
        response = await dealer2.post(f"/api/v1/registrations/{registrations[1]['id']}/stage",
                                      json={"stage": "quotation", "note": "报价已发"})
        assert response.status_code == 200, response.text

        by_region = (await hq.get("/api/v1/funnel", params={"group_by": "region"})).json()
        assert [(g["key"], [s["count"] for s in g["stages"]]) for g in by_region["groups"]] == [
            ("east", [1, 0, 1, 0])]
        by_line = (await hq.get("/api/v1/funnel", params={"group_by": "product_line"})).json()
        assert [(g["key"], [s["count"] for s in g["stages"]]) for g in by_line["groups"]] == [
            ("A系列", [1, 0, 1, 0])]
        # A dealer's funnel holds its own registrations only.
        own = (await dealer1.get("/api/v1/funnel", params={"group_by": "product_line"})).json()
        assert [[s["count"] for s in g["stages"]] for g in own["groups"]] == [[1, 0, 0, 0]]
        bad = await hq.get("/api/v1/funnel", params={"group_by": "colour"})
        assert bad.status_code == 422

        # Manual renewal is the channel manager's (dealers renew by moving the pipeline);
        # it extends protection and counts; another dealer does not even see it.
        registration_id = registrations[0]["id"]
        before = datetime.fromisoformat(registrations[0]["protected_until"].replace("Z", "+00:00"))
        own_renewal = await dealer1.post(f"/api/v1/registrations/{registration_id}/renew",
                                         json={"reason": "招标进行中"})
        assert own_renewal.status_code == 403
        response = await manager.post(f"/api/v1/registrations/{registration_id}/renew",
                                      json={"reason": "招标进行中"})
        assert response.status_code == 200, response.text
        renewed = response.json()
        renewed = renewed.get("registration", renewed)
        after = datetime.fromisoformat(renewed["protected_until"].replace("Z", "+00:00"))
        assert after >= before
        assert renewed["renewal_count"] == registrations[0]["renewal_count"] + 1
        other = await dealer2.post(f"/api/v1/registrations/{registration_id}/renew",
                                   json={"reason": "x"})
        assert other.status_code == 404
