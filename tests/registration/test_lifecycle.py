"""The scheduler (protection expiry releasing the customer, overdue leads back to the
pool, lapsed authorizations), authorizations (授权) with letters, and the customer
master (create, update, aliases, import with a row-level report)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import make_url

from tests.harness import eventually
from tests.registration.helpers import (
    ZHONGSHAN,
    EventLog,
    channel_manager,
    hospital_code,
    wait_status,
)


@pytest.mark.registration_options(protection_days="0.00002", auto_approve="clean",
                                  lead_claim_hours="0.0003")
async def test_scheduler_expires_releases_and_returns(suite, world):
    d1, d2 = world.dealers
    async with EventLog(suite) as events, suite.client(d1.token) as dealer1, \
            suite.client(d2.token) as dealer2, suite.client(world.admin_token) as hq:
        first = (await dealer1.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer": ZHONGSHAN})).json()
        assert first["status"] == "approved" and first["auto_approved"] is True
        expired = await wait_status(dealer1, first["id"], "expired")
        assert expired["decided_by"] == "system"
        await events.wait_for("registration.expired",
                              lambda p: p.registration.id == first["id"])
        await events.wait_for("dealer.notified", lambda p: p.kind == "registration.expired"
                              and p.dealer_id == d1.id)
        # the customer is free again: the other dealer wins it now
        second = (await dealer2.post("/api/v1/registrations", json={
            "product_line": "A系列", "customer_id": first["customer_id"]})).json()
        assert second["status"] == "approved"

        async def assigned_lead():
            lead = (await hq.post("/api/v1/leads", json={
                "customer_name": "上海市同仁医院", "address": "上海市长宁区仙霞路1111号",
                "product_line": "A系列"})).json()
            return lead if lead["status"] == "assigned" else None

        lead = await eventually(assigned_lead, timeout=15, interval=0.3)
        returned = await events.wait_for("lead.returned", lambda p: p.lead.id == lead["id"])
        assert returned[0].deadline_passed is True
        assert returned[0].previous_dealer_id == lead["assigned_dealer_id"]
        listed = (await hq.get("/api/v1/leads", params={"status": "pool"})).json()["leads"]
        assert lead["id"] in {item["id"] for item in listed}

        # an authorization whose end passed expires with an event
        grant = await hq.post("/api/v1/authorizations", json={
            "dealer_id": d1.id, "product_line": "A系列", "customer_id": first["customer_id"],
            "valid_from": datetime.now(UTC).date().isoformat(),
            "valid_to": (datetime.now(UTC).date() + timedelta(days=30)).isoformat()})
        assert grant.status_code == 201, grant.text
        database = make_url(suite.database_urls["registration"]).database

        def backdate() -> None:  # in a thread: the services share this event loop
            with sqlite3.connect(database, timeout=30) as connection:
                connection.execute("UPDATE authorizations SET valid_to = '2000-01-01' "
                                   "WHERE id = ?", (grant.json()["id"],))

        await asyncio.to_thread(backdate)
        await events.wait_for("authorization.expired",
                              lambda p: p.authorization.id == grant.json()["id"])


async def test_authorizations_and_letters(suite, world):
    d1, d2 = world.dealers
    _, manager_token = await channel_manager(suite, world, dealers=[d1.id])
    today = datetime.now(UTC).date()
    async with suite.client(world.admin_token) as hq, suite.client(manager_token) as manager, \
            suite.client(d1.token) as dealer1, suite.client(d2.token) as dealer2, \
            EventLog(suite) as events:
        customer = (await hq.post("/api/v1/customers", json=ZHONGSHAN)).json()["customer"]
        body = {"dealer_id": d1.id, "product_line": "A系列", "customer_id": customer["id"],
                "department": "心内科", "valid_from": today.isoformat(),
                "valid_to": (today + timedelta(days=365)).isoformat()}

        async def granted():
            response = await manager.post("/api/v1/authorizations", json=body)
            return response if response.status_code == 201 else None

        grant = (await eventually(granted, timeout=15, interval=0.3)).json()
        assert grant["status"] == "active" and grant["letter_no"].startswith("SQ-")
        assert grant["owner_user_id"]
        # the manager is not assigned to dealer 2
        response = await manager.post("/api/v1/authorizations", json={**body, "dealer_id": d2.id})
        assert response.status_code == 404
        bad = await manager.post("/api/v1/authorizations", json={
            **body, "valid_to": (today - timedelta(days=1)).isoformat(), "product_code": "A-001"})
        assert bad.status_code == 400
        future = (await manager.post("/api/v1/authorizations", json={
            **body, "department": "", "valid_from": (today + timedelta(days=10)).isoformat()}
        )).json()
        assert future["status"] == "pending"

        mine = (await dealer1.get("/api/v1/authorizations")).json()
        assert {g["id"] for g in mine["authorizations"]} == {grant["id"], future["id"]}
        assert (await dealer2.get("/api/v1/authorizations")).json()["authorizations"] == []
        assert (await manager.get("/api/v1/authorizations")).json()["page"]["total_size"] == 2
        valid_now = (await dealer1.get("/api/v1/authorizations",
                                       params={"valid_on": today.isoformat()})).json()
        assert [g["id"] for g in valid_now["authorizations"]] == [grant["id"]]

        pdf = await dealer1.get(f"/api/v1/authorizations/{grant['id']}/letter")
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-1.4") and pdf.content.rstrip().endswith(b"%%EOF")
        xlsx = await dealer1.get(f"/api/v1/authorizations/{grant['id']}/letter",
                                 params={"format": "xlsx"})
        assert xlsx.status_code == 200
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        values = [cell for row in sheet.iter_rows(values_only=True) for cell in row if cell]
        assert ZHONGSHAN["name"] in values and grant["letter_no"] in values
        assert (await dealer2.get(f"/api/v1/authorizations/{grant['id']}/letter")
                ).status_code == 404

        response = await manager.post(f"/api/v1/authorizations/{grant['id']}/revoke", json={})
        assert response.status_code == 400
        response = await manager.post(f"/api/v1/authorizations/{grant['id']}/revoke",
                                      json={"reason": "合同终止"})
        assert response.json()["status"] == "revoked"
        again = await manager.post(f"/api/v1/authorizations/{grant['id']}/revoke",
                                   json={"reason": "x"})
        assert again.status_code == 409
        await events.wait_for("authorization.revoked",
                              lambda p: p.authorization.id == grant["id"] and p.reason)
        await events.wait_for("authorization.granted", lambda p: p.authorization.id == future["id"])

        # A leaving manager's grants pass to the successor with the dealers.
        successor_id, _ = await channel_manager(suite, world, username="cm.li", dealers=[d2.id])
        response = await hq.post("/api/v1/assignments/transfer", json={
            "from_manager_user_id": grant["owner_user_id"],
            "to_manager_user_id": successor_id, "reason": "离职交接"})
        assert response.status_code == 200, response.text

        async def moved():
            listed = (await hq.get("/api/v1/authorizations",
                                   params={"owner_user_id": successor_id})).json()
            return {g["id"] for g in listed["authorizations"]} == {grant["id"], future["id"]}

        await eventually(moved, timeout=15)
        changed = await events.wait_for("authorization_owner.changed",
                                        lambda p: p.authorization.id == future["id"])
        assert changed[0].previous_owner_user_id == grant["owner_user_id"]


async def test_customer_master(suite, world):
    code = hospital_code(3)
    async with suite.client(world.admin_token) as hq, \
            suite.client(world.dealers[0].token) as dealer:
        response = await hq.post("/api/v1/customers", json={
            "name": "上海市第一人民医院", "address": "上海市虹口区海宁路100号", "credit_code": code,
            "aliases": ["市一医院"], "departments": ["眼科"]})
        assert response.status_code == 201, response.text
        customer = response.json()["customer"]
        assert customer["normalized_name"] == "上海第一人民医院"
        duplicate = await hq.post("/api/v1/customers", json={
            "name": "上海市第1人民医院", "address": "上海市虹口区"})
        assert duplicate.status_code == 409
        assert duplicate.json()["metadata"]["customer_id"] == customer["id"]
        by_code = await hq.post("/api/v1/customers", json={
            "name": "另一个名字", "address": "上海市虹口区", "credit_code": code})
        assert by_code.json()["metadata"]["match_kind"] == "MATCH_KIND_CREDIT_CODE"
        alias = (await dealer.post("/api/v1/customers/check-duplicates", json={
            "name": "市一医院", "division_code": "310109"})).json()
        assert alias["verdict"] == "duplicate"
        assert alias["candidates"][0]["match_kind"] == "alias"

        response = await hq.patch(f"/api/v1/customers/{customer['id']}",
                                  json={"division_code": "310101", "grade": "三级甲等"})
        assert response.status_code == 200, response.text
        assert response.json()["division_code"] == "310101"
        assert response.json()["division_code_overridden"] is True
        # A dealer tied to no customer of the master sees none of it (the duplicate check
        # above still told it the hospital exists): neither to edit nor in its list.
        assert (await dealer.patch(f"/api/v1/customers/{customer['id']}",
                                   json={"grade": "x"})).status_code == 404
        listed = (await dealer.get("/api/v1/customers",
                                   params={"division_code": "310000"})).json()
        assert listed["customers"] == []
        listed = (await hq.get("/api/v1/customers", params={"division_code": "310000"})).json()
        assert [c["id"] for c in listed["customers"]] == [customer["id"]]

        # Imports are all or nothing (the row rules: tests/service/registration).
        rows = ("名称,统一社会信用代码,地址,科室\n"
                "上海市肺科医院,,上海市杨浦区政民路507号,胸外科;呼吸科\n"
                "火星医院,,火星基地1号,\n")
        response = await hq.post("/api/v1/customers/import", content=rows.encode(),
                                 headers={"content-type": "text/csv"})
        report = response.json()
        assert report["accepted"] is False and report["created"] == 0
        assert [(e["row_number"], e["column"], e["code"]) for e in report["errors"]] == [
            (3, "", "UNKNOWN_DIVISION")]
        assert (await hq.get("/api/v1/customers", params={"query": "肺科"})).json()[
            "customers"] == []
        good = "\n".join(rows.splitlines()[:2]) + "\n"
        response = await hq.post("/api/v1/customers/import", content=good.encode("gb18030"),
                                 headers={"content-type": "text/csv"})
        assert response.json()["accepted"] is True and response.json()["created"] == 1
        lung = (await hq.get("/api/v1/customers", params={"query": "肺科"})).json()["customers"]
        assert lung[0]["departments"] == ["胸外科", "呼吸科"]
