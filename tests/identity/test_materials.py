"""The material library through the gateway against the real suite: HQ publishes a talk
track to a tag expression and versions it, a dealer's user in the audience finds and
downloads the current version, one outside never sees it, HQ sees who used what."""

from __future__ import annotations

import base64

from tests.identity.helpers import Admin, fields_of
from tests.world import STAFF_PASSWORD

V1, V2 = b"%PDF-1.4 talk track v1", b"%PDF-1.4 talk track v2"


def pdf(name: str, content: bytes, note: str = "") -> dict:
    return {"filename": name, "content_type": "application/pdf", "note": note,
            "content_base64": base64.b64encode(content).decode()}


async def test_publish_version_find_download_and_usage(suite):
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
        shenzhen_id = (await admin.dealer(2, south["id"], division_codes=["440305"]))["id"]
        await admin.user("sh.sales", ["dealer_sales"], shanghai["id"])
        await admin.user("sz.sales", ["dealer_sales"], shenzhen_id)
        sh, sz = await signed_in("sh.sales"), await signed_in("sz.sales")

        published = await admin.ok("POST", "/api/v1/materials", json={
            "title": "A系列开场话术", "description": "医院采购科拜访用", "kind": "talk_track",
            "audience": {"term": {"region_code": "east"}}, "file": pdf("话术.pdf", V1)})
        assert published["dealer_count"] == 1
        material_id = published["material"]["id"]
        versioned = await admin.ok("POST", f"/api/v1/materials/{material_id}/versions",
                                   json=pdf("话术-2.pdf", V2, "补充价格异议"))
        assert [v["number"] for v in versioned["versions"]] == [1, 2]

        found = (await sh.get("/api/v1/materials", params={"query": "采购科"})).json()
        assert [m["id"] for m in found["materials"]] == [material_id]
        assert (await sh.get("/api/v1/materials", params={"kind": "training"})).json()[
            "materials"] == []
        current = await sh.get(f"/api/v1/materials/{material_id}/download")
        assert current.content == V2
        assert (await sh.get(f"/api/v1/materials/{material_id}/download",
                             params={"version": 1})).content == V1
        assert (await sz.get("/api/v1/materials")).json()["materials"] == []
        assert (await sz.get(f"/api/v1/materials/{material_id}/download")).status_code == 404

        [usage] = (await admin.ok("GET", "/api/v1/material-usage"))["usage"]
        assert (usage["dealer_id"], usage["downloads"], usage["users"],
                usage["latest_version"]) == (shanghai["id"], 2, 1, 2)
        [listed] = (await admin.ok("GET", "/api/v1/materials"))["materials"]
        assert listed["download_count"] == 2
        assert (await sh.get("/api/v1/material-usage")).status_code == 403

        response = await admin.http.post("/api/v1/materials", json={
            "title": "坏文件", "kind": "training", "dealer_ids": [shanghai["id"]],
            "file": {"filename": "a.pdf", "content_type": "application/pdf",
                     "content_base64": "not base64!"}})
        assert response.status_code == 400 and fields_of(response.json()) == [
            "file.content_base64"]
        response = await admin.http.post("/api/v1/materials", json={
            "title": "假PDF", "kind": "training", "dealer_ids": [shanghai["id"]],
            "file": pdf("a.pdf", b"MZ")})
        assert response.status_code == 400 and fields_of(response.json()) == [
            "file.content_type"]
        assert len((await admin.ok("GET", "/api/v1/materials"))["materials"]) == 1
    finally:
        for client in clients:
            await client.aclose()
        await admin.aclose()
