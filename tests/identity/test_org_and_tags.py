"""Org structure, derived and custom tags, audience queries, and bad org input through
the gateway: each refused with the field named and nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite
from tests.identity.helpers import Admin, fields_of
from tests.world import credit_code


async def count_dealers(admin: Admin) -> int:
    body = await admin.ok("GET", "/api/v1/org-units", params={"kind": "dealer"})
    return body["page"]["total_size"]


async def run_org_and_tags(suite: Suite) -> None:
    admin = await Admin.login(suite)
    try:
        east = await admin.region("east", "华东")
        south = await admin.region("south", "华南")
        shanghai = await admin.dealer(1, east["id"], product_lines=["A系列", "B系列"])
        assert shanghai["derived_tags"] == ["华东-上海-一级-A系列", "华东-上海-一级-B系列"]
        assert shanghai["region_code"] == "east"
        platform = await admin.dealer(2, east["id"], tier="platform",
                                      division_codes=["310101", "310104"])
        assert platform["derived_tags"] == ["华东-上海-平台商-A系列"]
        sub = await admin.dealer(3, east["id"], tier="two", platform_dealer_id=platform["id"],
                                 shared_with_platform=True, division_codes=["320500"])
        assert sub["derived_tags"] == ["华东-苏州-二级-A系列"]
        shenzhen = await admin.dealer(4, south["id"], division_codes=["440305"],
                                      custom_tags=["重点客户"])
        assert shenzhen["derived_tags"] == ["华南-深圳-一级-A系列"]
        assert shenzhen["custom_tags"] == ["重点客户"]

        # Bad input: each names its field, nothing is written.
        before = await count_dealers(admin)
        cases = [
            ({"credit_code": "91310000MA1000001X"}, "credit_code"),
            ({"division_codes": ["310000", "999999"]}, "division_codes[1]"),
            ({"tier": "two", "platform_dealer_id": shanghai["id"]}, "platform_dealer_id"),
            ({"city_code": "000000"}, "city_code"),
        ]
        for serial, (override, field) in enumerate(cases, start=50):
            body = {"kind": "dealer", "name": "坏数据", "parent_id": east["id"],
                    "credit_code": credit_code(serial), "tier": "one",
                    "division_codes": ["310000"], "product_lines": ["A系列"], **override}
            response = await admin.http.post("/api/v1/org-units", json=body)
            assert response.status_code == 400, response.text
            assert field in fields_of(response.json()), response.text
        duplicate = await admin.http.post("/api/v1/org-units", json={
            "kind": "dealer", "name": "重复", "parent_id": east["id"],
            "credit_code": credit_code(1), "tier": "one", "division_codes": ["310000"],
            "product_lines": ["A系列"]})
        assert duplicate.status_code == 409 and fields_of(duplicate.json()) == ["credit_code"]
        assert await count_dealers(admin) == before

        # A cycle: 华东 under its own child region.
        jiangsu = await admin.region("js", "江苏片区", parent_id=east["id"])
        response = await admin.http.patch(f"/api/v1/org-units/{east['id']}",
                                          json={"parent_id": jiangsu["id"]})
        assert response.status_code == 400 and fields_of(response.json()) == ["parent_id"]
        assert "cycle" in response.json()["detail"]
        assert (await admin.ok("GET", f"/api/v1/org-units/{east['id']}"))["parent_id"] != \
            jiangsu["id"]
        # The platform dealer cannot stop being one while it has sub-dealers.
        response = await admin.http.patch(f"/api/v1/org-units/{platform['id']}",
                                          json={"tier": "one"})
        assert response.status_code == 400 and fields_of(response.json()) == ["tier"]
        # A sub-dealer cannot move under a non-platform dealer.
        response = await admin.http.patch(f"/api/v1/org-units/{sub['id']}",
                                          json={"platform_dealer_id": shanghai["id"]})
        assert response.status_code == 400
        assert fields_of(response.json()) == ["platform_dealer_id"]
        # Unknown fields and derived tags are not settable.
        response = await admin.http.patch(f"/api/v1/org-units/{sub['id']}",
                                          json={"derived_tags": ["x"]})
        assert response.status_code == 422

        # A valid change re-derives tags and is audited with before and after.
        moved = await admin.ok("PATCH", f"/api/v1/org-units/{shanghai['id']}",
                               json={"tier": "two", "reason": "降级"})
        assert moved["derived_tags"] == ["华东-上海-二级-A系列", "华东-上海-二级-B系列"]
        audit = await admin.ok("GET", "/api/v1/audit-events",
                               params={"target_id": shanghai["id"], "action": "org_unit.update"})
        [entry] = audit["audit_events"]
        assert entry["reason"] == "降级" and entry["actor"].startswith("user:")
        assert '"tier": "tier1"' in entry["before_json"]
        assert '"tier": "tier2"' in entry["after_json"]
        # Renaming a region re-derives its dealers' tags.
        await admin.ok("PATCH", f"/api/v1/org-units/{south['id']}", json={"name": "华南大区"})
        assert (await admin.ok("GET", f"/api/v1/org-units/{shenzhen['id']}"))[
            "derived_tags"] == ["华南大区-深圳-一级-A系列"]

        # Custom tags; derived tags cannot be removed.
        tagged = await admin.ok("POST", "/api/v1/dealer-tags", json={
            "dealer_ids": [shanghai["id"], platform["id"]], "tags": ["VIP"]})
        assert tagged == {"dealers_updated": 2}
        response = await admin.http.post("/api/v1/dealer-tags/remove", json={
            "dealer_ids": [shanghai["id"]], "tags": ["华东-上海-二级-A系列"]})
        assert response.status_code == 400 and fields_of(response.json()) == ["tags"]
        removed = await admin.ok("POST", "/api/v1/dealer-tags/remove", json={
            "dealer_ids": [platform["id"]], "tags": ["VIP"]})
        assert removed == {"dealers_updated": 1}
        tags = await admin.ok("GET", "/api/v1/tags", params={"prefix": "华东-上海"})
        assert {t["name"] for t in tags["tags"]} == {
            "华东-上海-二级-A系列", "华东-上海-二级-B系列", "华东-上海-平台商-A系列"}
        custom = await admin.ok("GET", "/api/v1/tags", params={"kind": "custom"})
        assert {(t["name"], t["dealer_count"]) for t in custom["tags"]} == {
            ("VIP", 1), ("重点客户", 1)}

        # Audiences: AND / OR / NOT, paginated.
        async def audience(expression, **extra) -> tuple[set[str], dict]:
            body = await admin.ok("POST", "/api/v1/audiences/query",
                                  json={"expression": expression, **extra})
            return {d["id"] for d in body["dealers"]}, body["page"]

        ids, _ = await audience({"term": {"tag": "华东-上海-二级-A系列"}})
        assert ids == {shanghai["id"]}
        ids, _ = await audience({"all_of": [{"term": {"region_code": "east"}},
                                            {"not": {"term": {"tier": "platform"}}}]})
        assert ids == {shanghai["id"], sub["id"]}
        ids, _ = await audience({"any_of": [{"term": {"tag": "VIP"}},
                                            {"term": {"division_code": "440300"}}]})
        assert ids == {shanghai["id"], shenzhen["id"]}
        ids, _ = await audience({"term": {"tag_prefix": "华东-"}})
        assert ids == {shanghai["id"], platform["id"], sub["id"]}
        first, page = await audience({"term": {"product_line": "A系列"}}, page_size=3)
        assert len(first) == 3 and page["total_size"] == 4 and page["next_page_token"]
        rest, page = await audience({"term": {"product_line": "A系列"}}, page_size=3,
                                    page_token=page["next_page_token"])
        assert len(rest) == 1 and not first & rest and not page["next_page_token"]
        response = await admin.http.post("/api/v1/audiences/query", json={
            "expression": {"all_of": [{"term": {"division_code": "999999"}}]}})
        assert response.status_code == 400
        assert fields_of(response.json()) == ["expression.all_of[0].term.division_code"]
        response = await admin.http.post("/api/v1/audiences/query", json={
            "expression": {"xor": []}})
        assert response.status_code == 400 and fields_of(response.json()) == ["expression"]
    finally:
        await admin.aclose()


async def test_org_tags_and_audiences(suite):
    await run_org_and_tags(suite)


@pytest.mark.postgres
async def test_org_tags_and_audiences_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_org_and_tags(suite)
    finally:
        await suite.stop()
