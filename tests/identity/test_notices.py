"""Notices with read receipts through the gateway against the real suite: HQ publishes a
must-confirm notice to a tag expression, a dealer's user in the audience reads and
confirms it, one outside never sees it, HQ follows the receipts, exports and reminds
(the events go out on NATS), and a dealer tagged later sees the notice still in force."""

from __future__ import annotations

import base64
import io

import nats
from openpyxl import load_workbook

from shared.bus.envelope import decode_envelope
from tests.harness import eventually
from tests.identity.helpers import Admin, fields_of
from tests.world import STAFF_PASSWORD

PDF = b"%PDF-1.4 holiday schedule"


async def test_publish_read_confirm_receipts_export_remind(suite):
    received: list = []
    nc = await nats.connect(suite.nats.url)

    async def record(message) -> None:
        received.append(decode_envelope(message.subject, message.data))

    await nc.subscribe("qudao.identity.notice.>", cb=record)
    admin = await Admin.login(suite)
    clients = []

    async def signed_in(username: str):
        client = suite.client(await suite.login(username, STAFF_PASSWORD))
        clients.append(client)
        return client

    try:
        east = await admin.region("east", "华东")
        south = await admin.region("south", "华南")
        shanghai = await admin.dealer(1, east["id"])
        shenzhen = await admin.dealer(2, south["id"], division_codes=["440305"])
        await admin.user("sh.sales", ["dealer_sales"], shanghai["id"])
        await admin.user("sh.admin", ["dealer_admin"], shanghai["id"])
        await admin.user("sz.sales", ["dealer_sales"], shenzhen["id"])
        await admin.user("east.manager", ["region_manager"], east["id"])
        sh, sz = await signed_in("sh.sales"), await signed_in("sz.sales")
        manager = await signed_in("east.manager")

        published = await admin.ok("POST", "/api/v1/notices", json={
            "title": "=五一假期发货安排", "body": "5月1日至5日暂停发货。", "category": "holiday",
            "must_confirm": True, "in_force_until": "2099-01-01T00:00:00+08:00",
            "audience": {"any_of": [{"term": {"tag": "华东-上海-一级-A系列"}},
                                    {"term": {"tag": "重点客户"}}]},
            "attachments": [{"filename": "安排.pdf", "content_type": "application/pdf",
                             "content_base64": base64.b64encode(PDF).decode()}]})
        assert published["dealer_count"] == 1
        notice = published["notice"]
        notice_id = notice["id"]

        listing = (await sh.get("/api/v1/notices")).json()
        assert [n["id"] for n in listing["notices"]] == [notice_id]
        assert listing["unread_count"] == 1 and listing["notices"][0]["read_at"] is None
        assert (await sz.get("/api/v1/notices")).json()["notices"] == []
        assert (await sz.get(f"/api/v1/notices/{notice_id}")).status_code == 404

        read = (await sh.get(f"/api/v1/notices/{notice_id}")).json()
        assert read["read_at"] and read["confirmed_at"] is None
        attachment = notice["attachments"][0]
        download = await sh.get(f"/api/v1/notices/{notice_id}/attachments/{attachment['id']}")
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        confirmed = (await sh.post(f"/api/v1/notices/{notice_id}/confirm")).json()
        assert confirmed["confirmed_at"]
        assert (await sh.get("/api/v1/notices", params={"unread_only": True})).json()[
            "unread_count"] == 0

        receipts = (await admin.ok("GET", f"/api/v1/notices/{notice_id}/receipts"))["receipts"]
        assert {r["username"]: r["state"] for r in receipts} == {
            "sh.admin": "unread", "sh.sales": "confirmed"}
        assert (await sh.get(f"/api/v1/notices/{notice_id}/receipts")).status_code == 403
        [counted] = (await manager.get("/api/v1/notices")).json()["notices"]
        assert (counted["recipient_count"], counted["read_count"],
                counted["confirmed_count"]) == (2, 1, 1)

        export = await admin.http.get(f"/api/v1/notices/{notice_id}/receipts/export")
        assert export.status_code == 200, export.text
        assert "%E9%98%85%E8%AF%BB%E5%9B%9E%E6%89%A7" in export.headers["content-disposition"]
        rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(
            values_only=True))
        assert rows[0][:4] == ("经销商", "用户名", "姓名", "状态")
        assert sorted(row[3] for row in rows[1:]) == ["已确认", "未读"]

        reminded = (await manager.post(f"/api/v1/notices/{notice_id}/remind")).json()
        assert reminded == {"reminded_users": 1, "reminded_dealers": 1}

        # Shenzhen joins the audience later: the notice is still in force.
        await admin.ok("POST", "/api/v1/dealer-tags",
                       json={"dealer_ids": [shenzhen["id"]], "tags": ["重点客户"]})
        assert [n["id"] for n in (await sz.get("/api/v1/notices")).json()["notices"]] == [
            notice_id]
        # ... but the east region's manager does not see Shenzhen's users.
        receipts = (await manager.get(f"/api/v1/notices/{notice_id}/receipts")).json()
        assert {r["username"] for r in receipts["receipts"]} == {"sh.admin", "sh.sales"}

        subjects = ["qudao.identity.notice.published", "qudao.identity.notice.read",
                    "qudao.identity.notice.confirmed", "qudao.identity.notice.reminded"]
        await eventually(lambda: {e.subject for e in received} >= set(subjects), timeout=5)
        [reminder] = [e.payload for e in received
                      if e.subject == "qudao.identity.notice.reminded"]
        assert [r.dealer_id for r in reminder.recipients] == [shanghai["id"]]
    finally:
        for client in clients:
            await client.aclose()
        await admin.aclose()
        await nc.close()


async def test_bad_notices_name_their_fields_and_publish_nothing(suite):
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        response = await admin.http.post("/api/v1/notices", json={
            "title": "价格调整", "body": "见附件", "category": "price",
            "dealer_ids": [dealer["id"]],
            "attachments": [{"filename": "价格.pdf", "content_type": "application/pdf",
                             "content_base64": base64.b64encode(b"MZ not a pdf").decode()},
                            {"filename": "a.exe", "content_type": "application/x-msdownload",
                             "content_base64": "TVo="}]})
        assert response.status_code == 400, response.text
        assert fields_of(response.json()) == ["attachments[0].content_type",
                                              "attachments[1].content_type"]
        response = await admin.http.post("/api/v1/notices", json={
            "title": "无对象", "body": "正文", "category": "other"})
        assert response.status_code == 400 and fields_of(response.json()) == ["audience"]
        response = await admin.http.post("/api/v1/notices", json={
            "title": "坏表达式", "body": "正文", "category": "other",
            "audience": {"term": {"colour": "红"}}})
        assert response.status_code == 400 and fields_of(response.json()) == ["audience.term"]
        listing = await admin.ok("GET", "/api/v1/notices")
        assert listing["notices"] == []
    finally:
        await admin.aclose()
