"""Registration (报备) end to end through the gateway, on SQLite and PostgreSQL: duplicate
check first, first come wins, approval by the channel manager, HQ review of look-alikes,
the pipeline with renewal, the funnel and what each dealer sees. The rules one by one
(bad input, recall, rejection, the territory rule) are tested on the use cases in
tests/service/registration/."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite
from tests.registration.conftest import registration_options
from tests.registration.helpers import ZHONGSHAN, channel_manager, hospital_code
from tests.world import build_world

CODE = hospital_code(1)


async def test_register_approve_and_protect(suite, world):
    await register_approve_and_protect(suite, world)


@pytest.mark.postgres
async def test_register_approve_and_protect_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres", options=registration_options()).start()
    try:
        await register_approve_and_protect(suite, await build_world(suite))
    finally:
        await suite.stop()


async def register_approve_and_protect(suite, world):
    manager_id, manager_token = await channel_manager(suite, world)
    first, second = world.dealers
    async with suite.client(first.token) as dealer1, suite.client(second.token) as dealer2, \
            suite.client(manager_token) as manager, suite.client(world.admin_token) as hq:
        response = await dealer1.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": {**ZHONGSHAN, "credit_code": CODE},
            "department": "心内科", "note": "首次拜访"})
        assert response.status_code == 201, response.text
        registration = response.json()
        assert registration["status"] == "submitted"
        assert registration["dealer_id"] == first.id
        assert registration["source"] == "dealer_sourced"
        assert registration["stage"] == "initial_contact"
        customer_id = registration["customer_id"]
        customer = (await dealer1.get(f"/api/v1/customers/{customer_id}")).json()
        assert customer["normalized_name"] == "复旦大学中山医院"
        assert customer["division_code"] == "310104"
        assert customer["city_code"] == "310100"
        assert customer["division_code_overridden"] is False

        # Approving: the channel manager of the dealer; twice is refused.
        response = await manager.post(f"/api/v1/registrations/{registration['id']}/approve",
                                      json={"comment": "同意"})
        assert response.status_code == 200, response.text
        approved = response.json()
        assert approved["status"] == "approved"
        until = datetime.fromisoformat(approved["protected_until"].replace("Z", "+00:00"))
        assert 89 <= (until - datetime.now(until.tzinfo)).days <= 90
        again = await manager.post(f"/api/v1/registrations/{registration['id']}/approve",
                                   json={})
        assert again.status_code == 409
        assert again.json()["reason"] == "ALREADY_APPROVED"

        # The other dealer registers the same hospital under another spelling but the
        # same credit code: the same customer, protected, so rejected with the evidence.
        response = await dealer2.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": {
                "name": "复旦大学附属中山医院（徐汇院区）", "credit_code": CODE.lower(),
                "address": "上海市徐汇区枫林路180号"}})
        assert response.status_code == 201, response.text
        lost = response.json()
        assert lost["status"] == "rejected"
        assert lost["customer_id"] == customer_id
        assert registration["id"] in lost["decision_note"]
        claims = [c for e in lost["evidence"] for c in e["claims"]]
        assert [c["registration_id"] for c in claims] == [registration["id"]]
        assert claims[0]["dealer_id"] == ""  # another dealer's identity is not shown

        # The duplicate check alone writes nothing and shows the same evidence.
        response = await dealer2.post("/api/v1/customers/check-duplicates", json={
            "name": "中山医院", "address": "上海市长宁区", "product_line": "A系列"})
        assert response.status_code == 200, response.text
        check = response.json()
        assert check["verdict"] == "possible_duplicate"
        assert check["candidates"][0]["customer"]["id"] == customer_id
        assert check["candidates"][0]["match_kind"] == "fuzzy_name"
        response = await dealer2.post("/api/v1/customers/check-duplicates", json={
            "name": "复旦大学中山医院", "address": "上海市徐汇区"})
        assert response.json()["verdict"] == "duplicate"
        assert response.json()["candidates"][0]["match_kind"] == "normalized_name"

        # A look-alike new customer goes to HQ review with both claims.
        response = await dealer2.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": {"name": "中山医院",
                                                 "address": "上海市长宁区仙霞路"}})
        assert response.status_code == 201, response.text
        review = response.json()
        assert review["status"] == "under_review"
        assert review["conflict_id"]
        assert review["evidence"][0]["customer"]["id"] == customer_id
        # the channel manager cannot decide what HQ reviews
        response = await manager.post(f"/api/v1/registrations/{review['id']}/approve",
                                      json={})
        assert response.status_code == 409
        assert (await dealer1.get("/api/v1/conflicts")).status_code == 403
        conflicts = (await hq.get("/api/v1/conflicts", params={"status": "open"})).json()
        assert conflicts["page"]["total_size"] == 1
        conflict = conflicts["conflicts"][0]
        assert {c["registration"]["id"] for c in conflict["claims"]} == {
            registration["id"], review["id"]}
        claim = next(c for c in conflict["claims"] if c["registration"]["id"] == review["id"])
        assert claim["evidence"][0]["claims"][0]["registration_id"] == registration["id"]
        assert claim["evidence"][0]["claims"][0]["dealer_id"] == first.id  # HQ sees who
        response = await hq.post(f"/api/v1/conflicts/{conflict['id']}/resolve", json={
            "winning_registration_id": registration["id"], "note": "同一家医院，先到先得"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "resolved"
        lost = (await dealer2.get(f"/api/v1/registrations/{review['id']}")).json()
        assert lost["status"] == "rejected"
        assert "先到先得" in lost["decision_note"]
        kept = (await dealer1.get(f"/api/v1/registrations/{registration['id']}")).json()
        assert kept["status"] == "approved" and kept["conflict_id"] == ""
        again = await hq.post(f"/api/v1/conflicts/{conflict['id']}/resolve", json={
            "winning_registration_id": review["id"], "note": "x"})
        assert again.status_code == 409

        # Pipeline: forward only, each move renews protection; notes and next step.
        response = await dealer1.post(f"/api/v1/registrations/{registration['id']}/stage",
                                      json={"stage": "needs_confirmed", "note": "科室确认需求",
                                            "next_step": "报价"})
        assert response.status_code == 200, response.text
        moved = response.json()
        assert moved["stage"] == "needs_confirmed" and moved["renewal_count"] == 1
        assert moved["next_step"] == "报价"
        assert moved["protected_until"] >= approved["protected_until"]
        back = await dealer1.post(f"/api/v1/registrations/{registration['id']}/stage",
                                  json={"stage": "initial_contact"})
        assert back.status_code == 400
        assert back.json()["errors"][0]["field"] == "stage"
        response = await dealer1.post(f"/api/v1/registrations/{registration['id']}/notes",
                                      json={"text": "约了主任", "next_step_due": "2031-01-02"})
        assert response.status_code == 201, response.text
        notes = (await dealer1.get(f"/api/v1/registrations/{registration['id']}/notes")).json()
        assert [n["text"] for n in notes["notes"]][:2] == ["约了主任", "科室确认需求"]
        bad_due = await dealer1.post(f"/api/v1/registrations/{registration['id']}/notes",
                                     json={"text": "x", "next_step_due": "tomorrow"})
        assert bad_due.json()["errors"][0]["field"] == "next_step_due"

        funnel = (await hq.get("/api/v1/funnel", params={"group_by": "dealer"})).json()
        assert funnel["stages"] == ["initial_contact", "needs_confirmed", "quotation",
                                    "contract_signed"]
        assert [(g["key"], [s["count"] for s in g["stages"]]) for g in funnel["groups"]] == [
            (first.id, [0, 1, 0, 0])]
        assert (await dealer2.get("/api/v1/funnel")).json()["groups"] == []
        by_region = (await hq.get("/api/v1/funnel", params={"group_by": "region"})).json()
        assert [(g["key"], [s["count"] for s in g["stages"]]) for g in by_region["groups"]] == [
            ("east", [0, 1, 0, 0])]
        assert (await hq.get("/api/v1/funnel", params={"group_by": "colour"})).status_code == 422
        expiring = (await dealer1.get("/api/v1/registrations/expiring",
                                      params={"within_days": 365})).json()
        assert [r["id"] for r in expiring["registrations"]] == [registration["id"]]
        assert (await dealer1.get("/api/v1/registrations/expiring")).json()[
            "registrations"] == []

        # Dealers see only their own registrations.
        assert (await dealer2.get(f"/api/v1/registrations/{registration['id']}")
                ).status_code == 404
        mine = (await dealer2.get("/api/v1/registrations")).json()
        assert {r["dealer_id"] for r in mine["registrations"]} == {second.id}
        assert manager_id
