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
    """Through the gateway and the real database: the org, tags and audiences end to end.
    (The tree rules, each bad field, and who may do what are tested on the use cases,
    tests/service/identity.)"""
    admin = await Admin.login(suite)
    try:
        east = await admin.region("east", "华东")
        south = await admin.region("south", "华南")
        shanghai = await admin.dealer(1, east["id"], product_lines=["A系列", "B系列"])
        assert shanghai["derived_tags"] == ["华东-上海-一级-A系列", "华东-上海-一级-B系列"]
        assert shanghai["region_code"] == "east"
        platform = await admin.dealer(2, east["id"], tier="platform",
                                      division_codes=["310101", "310104"])
        sub = await admin.dealer(3, east["id"], tier="two", platform_dealer_id=platform["id"],
                                 shared_with_platform=True, division_codes=["320500"])
        assert sub["derived_tags"] == ["华东-苏州-二级-A系列"]
        shenzhen = await admin.dealer(4, south["id"], division_codes=["440305"],
                                      custom_tags=["重点客户"])
        assert shenzhen["custom_tags"] == ["重点客户"]

        # Bad input names its field and writes nothing; so does a taken credit code.
        before = await count_dealers(admin)
        response = await admin.http.post("/api/v1/org-units", json={
            "kind": "dealer", "name": "坏数据", "parent_id": east["id"],
            "credit_code": credit_code(50), "tier": "one",
            "division_codes": ["310000", "999999"], "product_lines": ["A系列"]})
        assert response.status_code == 400 and fields_of(response.json()) == [
            "division_codes[1]"]
        duplicate = await admin.http.post("/api/v1/org-units", json={
            "kind": "dealer", "name": "重复", "parent_id": east["id"],
            "credit_code": credit_code(1), "tier": "one", "division_codes": ["310000"],
            "product_lines": ["A系列"]})
        assert duplicate.status_code == 409 and fields_of(duplicate.json()) == ["credit_code"]
        assert await count_dealers(admin) == before
        response = await admin.http.patch(f"/api/v1/org-units/{platform['id']}",
                                          json={"tier": "one"})
        assert response.status_code == 400 and fields_of(response.json()) == ["tier"]
        response = await admin.http.patch(f"/api/v1/org-units/{sub['id']}",
                                          json={"derived_tags": ["x"]})
        assert response.status_code == 422

        # A change re-derives tags and is audited; renaming a region retags its dealers.
        moved = await admin.ok("PATCH", f"/api/v1/org-units/{shanghai['id']}",
                               json={"tier": "two", "reason": "降级"})
        assert moved["derived_tags"] == ["华东-上海-二级-A系列", "华东-上海-二级-B系列"]
        audit = await admin.ok("GET", "/api/v1/audit-events",
                               params={"target_id": shanghai["id"], "action": "org_unit.update"})
        [entry] = audit["audit_events"]
        assert entry["reason"] == "降级" and '"tier": "tier1"' in entry["before_json"]
        await admin.ok("PATCH", f"/api/v1/org-units/{south['id']}", json={"name": "华南大区"})
        assert (await admin.ok("GET", f"/api/v1/org-units/{shenzhen['id']}"))[
            "derived_tags"] == ["华南大区-深圳-一级-A系列"]
        found = await admin.ok("GET", "/api/v1/org-units", params={"query": "经销商2"})
        assert [u["id"] for u in found["org_units"]] == [platform["id"]]

        # Custom tags, the tag list, audiences (paginated).
        tagged = await admin.ok("POST", "/api/v1/dealer-tags", json={
            "dealer_ids": [shanghai["id"], platform["id"]], "tags": ["VIP"]})
        assert tagged == {"dealers_updated": 2}
        removed = await admin.ok("POST", "/api/v1/dealer-tags/remove", json={
            "dealer_ids": [platform["id"]], "tags": ["VIP"]})
        assert removed == {"dealers_updated": 1}
        custom = await admin.ok("GET", "/api/v1/tags", params={"kind": "custom"})
        assert {(t["name"], t["dealer_count"]) for t in custom["tags"]} == {
            ("VIP", 1), ("重点客户", 1)}

        async def audience(expression, **extra) -> tuple[set[str], dict]:
            body = await admin.ok("POST", "/api/v1/audiences/query",
                                  json={"expression": expression, **extra})
            return {d["id"] for d in body["dealers"]}, body["page"]

        ids, _ = await audience({"all_of": [{"term": {"region_code": "east"}},
                                            {"not": {"term": {"tier": "platform"}}}]})
        assert ids == {shanghai["id"], sub["id"]}
        ids, _ = await audience({"any_of": [{"term": {"tag": "VIP"}},
                                            {"term": {"division_code": "440300"}}]})
        assert ids == {shanghai["id"], shenzhen["id"]}
        first, page = await audience({"term": {"product_line": "A系列"}}, page_size=3)
        assert len(first) == 3 and page["total_size"] == 4 and page["next_page_token"]
        rest, page = await audience({"term": {"product_line": "A系列"}}, page_size=3,
                                    page_token=page["next_page_token"])
        assert len(rest) == 1 and not first & rest and not page["next_page_token"]
        response = await admin.http.post("/api/v1/audiences/query", json={
            "expression": {"all_of": [{"term": {"division_code": "999999"}}]}})
        assert response.status_code == 400
        assert fields_of(response.json()) == ["expression.all_of[0].term.division_code"]
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
