"""One resource style through the gateway: updates that can race carry a version (ETag,
If-Match, 412), creations repeat safely with an Idempotency-Key, and list pages are
cursors that stay exact while rows are inserted between them."""

from __future__ import annotations

import asyncio
import base64
import uuid

import pytest

from tests.conftest import require_postgres
from tests.e2e.test_gateway_errors import assert_problem
from tests.harness import Suite
from tests.world import ADMIN_PASSWORD, credit_code

# Each test creates its own rows (unique names) and reads only those: one suite.
pytestmark = pytest.mark.asyncio(loop_scope="module")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def number() -> int:
    return uuid.uuid4().int % 10**6


async def created(client, path: str, body: dict) -> dict:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def customer(client, world=None) -> dict:
    return (await created(client, "/api/v1/customers", {
        "name": f"上海市第{number()}人民医院",
        "address": f"上海市黄浦区瑞金二路{number()}号"}))["customer"]


async def dealer(client, world) -> dict:
    return await created(client, "/api/v1/org-units", {
        "kind": "dealer", "name": unique("版本经销商"), "parent_id": world.region_id,
        "credit_code": credit_code(1000 + number()), "tier": "two",
        "division_codes": ["310000"], "product_lines": ["A系列"]})


async def user(client, world) -> dict:
    return await created(client, "/api/v1/users", {
        "username": unique("ver."), "password": "Version-Passw0rd!",
        "roles": ["dealer_sales"], "org_unit_id": world.dealers[0].id})


async def sop_rule(client, world) -> dict:
    return await created(client, "/api/v1/sop-rules", {
        "name": unique("跟进"), "trigger": "lead.assigned", "closing": "lead.claimed",
        "deadline_minutes": 60, "assignee_role": "dealer"})


def limit(yuan: int) -> dict:
    return {"credit_limit": {"amount_minor": yuan * 100, "currency": "CNY"}}


async def credit_terms(client, world) -> dict:
    unit = await dealer(client, world)
    response = await client.put(f"/api/v1/dealer-accounts/{unit['id']}/credit-limit",
                                json=limit(10_000))
    assert response.status_code == 200, response.text
    return {**response.json(), "id": unit["id"]}


# resource: (make one, its GET path or None, method, path, two different changes)
VERSIONED = {
    "customer": (customer, "/api/v1/customers/{id}", "PATCH", "/api/v1/customers/{id}",
                 {"grade": "三级甲等"}, {"grade": "二级甲等"}),
    "org unit": (dealer, "/api/v1/org-units/{id}", "PATCH", "/api/v1/org-units/{id}",
                 {"product_lines": ["A系列", "B系列"]}, {"product_lines": ["B系列"]}),
    "user roles": (user, "/api/v1/users/{id}", "PUT", "/api/v1/users/{id}/roles",
                   {"roles": ["dealer_admin"]}, {"roles": ["dealer_sales"]}),
    "SOP rule": (sop_rule, None, "PATCH", "/api/v1/sop-rules/{id}",
                 {"active": False}, {"active": True}),
    "credit limit": (credit_terms, "/api/v1/dealer-accounts/{id}", "PUT",
                     "/api/v1/dealer-accounts/{id}/credit-limit", limit(20_000), limit(30_000)),
}


@pytest.mark.parametrize("resource", list(VERSIONED))
async def test_an_update_against_a_stale_version_is_412(shared_suite, shared_world, resource):
    """Two editors read version 1; the first change lands (version 2), the second,
    made against version 1, is refused with 412 and changes nothing; without If-Match
    an update still applies to whatever is current."""
    make, get_path, method, path, first, second = VERSIONED[resource]
    async with shared_suite.client(shared_world.admin_token) as admin:
        made = await make(admin, shared_world)
        assert made["version"] == 1
        if get_path:
            read = await admin.get(get_path.format(id=made["id"]))
            assert read.status_code == 200 and read.headers["etag"] == '"1"', read.text
        url = path.format(id=made["id"])
        changed = await admin.request(method, url, json=first, headers={"If-Match": '"1"'})
        assert changed.status_code == 200, changed.text
        assert changed.headers["etag"] == '"2"' and changed.json()["version"] == 2
        stale = await admin.request(method, url, json=second, headers={"If-Match": '"1"'})
        body = assert_problem(stale, 412)
        assert body["reason"] == "STALE_VERSION" and body["metadata"]["current_version"] == "2"
        if get_path:
            kept = (await admin.get(get_path.format(id=made["id"]))).json()
            assert kept["version"] == 2
            assert all(kept[name] == value for name, value in first.items())
        unconditional = await admin.request(method, url, json=second)
        assert unconditional.status_code == 200, unconditional.text
        assert unconditional.json()["version"] == 3
        assert_problem(await admin.request(method, url, json=first,
                                           headers={"If-Match": "version 3"}), 400, "If-Match")


async def test_of_two_edits_of_one_version_at_once_one_lands(shared_suite, shared_world):
    """Two editors send their change against version 1 at the same moment: the service
    compares the version in its updating transaction, so exactly one lands and the other
    is 412 (never both, as a read-then-write at the gateway would allow)."""
    async with shared_suite.client(shared_world.admin_token) as admin:
        made = await customer(admin)
        url = f"/api/v1/customers/{made['id']}"
        answers = await asyncio.gather(*(
            admin.patch(url, json={"grade": grade}, headers={"If-Match": '"1"'})
            for grade in ("三级甲等", "二级乙等", "一级")))
        assert sorted(a.status_code for a in answers) == [200, 412, 412], [
            a.text for a in answers]
        landed = next(a.json() for a in answers if a.status_code == 200)
        assert (await admin.get(url)).json()["grade"] == landed["grade"]


async def test_a_retry_racing_its_first_request_creates_once(shared_suite, shared_world):
    """A retry sent while the first request still runs: one lead is created; every
    answer is that lead or a 409 asking to retry shortly."""
    key = unique("race-")
    product_line = unique("并发")
    body = {"customer_name": f"宁波市第{number()}医院", "division_code": "330203",
            "product_line": product_line}
    async with shared_suite.client(shared_world.admin_token) as admin:
        answers = await asyncio.gather(*(
            admin.post("/api/v1/leads", json=body, headers={"Idempotency-Key": key})
            for _ in range(3)))
        ids = {a.json()["id"] for a in answers if a.status_code == 201}
        assert len(ids) == 1 and all(a.status_code in (201, 409) for a in answers), [
            a.text for a in answers]
        listed = (await admin.get("/api/v1/leads", params={"product_line": product_line}))
        assert [lead["id"] for lead in listed.json()["leads"]] == list(ids)


def pdf(name: str) -> dict:
    return {"filename": name, "content_type": "application/pdf",
            "content_base64": base64.b64encode(b"%PDF-1.4 " + name.encode()).decode()}


# creation: (path, body maker(world), the created resource's id in the answer)
CREATIONS = {
    "customer": ("/api/v1/customers", lambda w: {
        "name": f"苏州市第{number()}医院", "address": f"江苏省苏州市姑苏区十梓街{number()}号"},
        lambda a: a["customer"]["id"]),
    "lead": ("/api/v1/leads", lambda w: {
        "customer_name": f"杭州市第{number()}医院", "division_code": "330102",
        "product_line": "A系列"}, lambda a: a["id"]),
    "org unit": ("/api/v1/org-units", lambda w: {
        "kind": "dealer", "name": unique("重试经销商"), "parent_id": w.region_id,
        "credit_code": credit_code(1000 + number()), "tier": "two",
        "division_codes": ["310000"], "product_lines": ["A系列"]},
        lambda a: a["id"]),
    "user": ("/api/v1/users", lambda w: {
        "username": unique("retry."), "password": "Retry-Passw0rd!",
        "roles": ["dealer_sales"], "org_unit_id": w.dealers[0].id}, lambda a: a["id"]),
    "SOP rule": ("/api/v1/sop-rules", lambda w: {
        "name": unique("重试规则"), "trigger": "lead.assigned", "closing": "lead.claimed",
        "deadline_minutes": 30, "assignee_role": "dealer"}, lambda a: a["id"]),
    "notice": ("/api/v1/notices", lambda w: {
        "title": unique("通知"), "body": "正文", "category": "other",
        "dealer_ids": [w.dealers[0].id]}, lambda a: a["notice"]["id"]),
    "material": ("/api/v1/materials", lambda w: {
        "title": unique("资料"), "kind": "training", "dealer_ids": [w.dealers[0].id],
        "file": pdf("资料.pdf")}, lambda a: a["material"]["id"]),
    "rebate program": ("/api/v1/rebate-programs", lambda w: {"program": {
        "name": unique("返利"), "product_lines": ["A系列"], "period": "month",
        "period_start": "2027-03-01", "period_end": "2027-03-31",
        "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
        "tiers": [{"min_quantity": 1, "rate_bps": 100}]}}, lambda a: a["program"]["id"]),
    "statement": ("/api/v1/statements", lambda w: {
        "dealer_id": w.dealers[1].id, "period_start": "2026-01-01",
        "period_end": f"2026-01-{10 + number() % 19:02d}"}, lambda a: a["id"]),
}


@pytest.mark.parametrize("creation", list(CREATIONS))
async def test_a_creation_retried_with_its_key_answers_the_first(shared_suite, shared_world,
                                                                   creation):
    """A phone that lost the answer retries with the same Idempotency-Key: the first
    resource comes back and no second one is made; the key with another body is refused
    naming the header."""
    path, make, id_of = CREATIONS[creation]
    key = unique("key-")
    body = make(shared_world)
    async with shared_suite.client(shared_world.admin_token) as admin:
        first = await admin.post(path, json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        again = await admin.post(path, json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201, again.text
        assert id_of(again.json()) == id_of(first.json())
        other = make(shared_world)
        while other == body:
            other = make(shared_world)
        clash = await admin.post(path, json=other, headers={"Idempotency-Key": key})
        assert_problem(clash, 409, "Idempotency-Key")
        fresh = await admin.post(path, json=other, headers={"Idempotency-Key": key + "-2"})
        assert fresh.status_code == 201, fresh.text
        assert id_of(fresh.json()) != id_of(first.json())


async def test_a_cursor_list_stays_exact_while_rows_are_inserted(shared_suite, shared_world):
    """Newest-first leads, paged while new ones arrive: every lead that existed at the
    first page is seen exactly once, the new ones are not mixed in, and the total counts
    what is there now."""
    product_line = unique("游标")
    async with shared_suite.client(shared_world.admin_token) as admin:
        made = []
        for _ in range(7):
            made.append((await created(admin, "/api/v1/leads", {
                "customer_name": f"南京市第{number()}医院",
                "division_code": "320102", "product_line": product_line}))["id"])
        seen, token, inserted = [], "", []
        while True:
            params = {"product_line": product_line, "page_size": 3}
            if token:
                params["page_token"] = token
            response = await admin.get("/api/v1/leads", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen.extend(lead["id"] for lead in page["leads"])
            assert page["page"]["total_size"] == len(made) + len(inserted)
            token = page["page"].get("next_page_token", "")
            if not token:
                break
            inserted.append((await created(admin, "/api/v1/leads", {
                "customer_name": f"无锡市第{number()}医院",
                "division_code": "320102", "product_line": product_line}))["id"])
        assert seen == list(reversed(made))
        forged = base64.urlsafe_b64encode(b'k:[{"t":"not a time"},"x"]').decode()
        for bad in (forged, "%%%", base64.urlsafe_b64encode(b"o:5").decode()):
            assert_problem(await admin.get("/api/v1/leads", params={"page_token": bad}), 400,
                           "page.page_token")
        # Bounded before it reaches a service.
        assert_problem(await admin.get("/api/v1/leads", params={"page_token": "k" * 201}),
                       422, "query.page_token")


@pytest.mark.postgres
async def test_on_postgresql_of_two_edits_of_one_version_at_once_one_lands(tmp_path):
    """PostgreSQL lets the two transactions run side by side (SQLite queues writers):
    the compare in the UPDATE still lets exactly one through."""
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres",
                        services=("identity", "registration")).start()
    try:
        async with suite.client(await suite.login("admin", ADMIN_PASSWORD)) as admin:
            made = await customer(admin)
            url = f"/api/v1/customers/{made['id']}"
            for round_ in range(1, 4):
                answers = await asyncio.gather(*(
                    admin.patch(url, json={"grade": f"{grade}{round_}"},
                                headers={"If-Match": f'"{round_}"'})
                    for grade in ("三级", "二级", "一级", "未定")))
                assert sorted(a.status_code for a in answers) == [200, 412, 412, 412], [
                    a.text for a in answers]
            assert (await admin.get(url)).json()["version"] == 4
    finally:
        await suite.stop()
