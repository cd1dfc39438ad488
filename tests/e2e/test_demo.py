"""`qudao demo --small` fills a real suite through the gateway and the ERP's gRPC door,
leaves a world whose counts match its plan, and a second run sends nothing new. The
notices it publishes land in their recipients' inboxes (engagement consumes identity's
NoticePublished), and so does HQ's reminder."""

from __future__ import annotations

from collections import Counter

from suite.demo import run_demo
from suite.demo.world import MATERIALS, NOTICES, PASSWORD, SOP_RULES, Scale, plan
from tests.harness import ADMIN_PASSWORD, eventually


async def _count(client, path: str, key: str, **params) -> list[dict]:
    """Every item of a list, page by page; each page's total is the whole list's."""
    items, token, totals = [], "", set()
    while True:
        answer = await client.get(path, params={**params, "page_size": 500,
                                                "page_token": token})
        assert answer.status_code == 200, answer.text
        items += answer.json()[key]
        page = answer.json().get("page", {})
        totals.add(page.get("total_size", 0))
        token = page.get("next_page_token", "")
        if not token:
            assert totals == {len(items)}, f"{path} counts {totals}, lists {len(items)}"
            return items


# The lists the portal pages through, with the key of their items: each says how many
# there are (a page of products once said 0 of 1,000).
LISTS = {"/api/v1/products": "products", "/api/v1/price-lists": "price_lists",
         "/api/v1/dealer-accounts": "accounts", "/api/v1/shipments": "shipments",
         "/api/v1/channel-inventory": "items", "/api/v1/customers": "customers",
         "/api/v1/users": "users", "/api/v1/sop-rules": "rules", "/api/v1/tasks": "tasks",
         "/api/v1/flow/rows": "rows", "/api/v1/dealer-health": "dealers"}


async def test_the_small_demo_builds_its_world_once(suite):
    world = plan(Scale.named("small"))
    order_addr = f"127.0.0.1:{suite.ports['order']}"
    first = await run_demo("small", suite.base_url, order_addr, ADMIN_PASSWORD)
    assert first["sent"]["dealers"] == len(world.dealers)
    assert first["sent"]["users"] == len(world.people)
    assert first["sent"]["hospitals"] == len(world.hospitals)
    assert first["sent"]["orders"] == len(world.orders)

    admin = await suite.login("admin", ADMIN_PASSWORD)
    async with suite.client(admin) as client:
        dealers = await _count(client, "/api/v1/org-units", "org_units", kind="dealer")
        assert len(dealers) == len(world.dealers)
        assert {d["tier"] for d in dealers} == {"platform", "one", "two"}
        assert any(d.get("platform_dealer_id") for d in dealers)
        registrations = await _count(client, "/api/v1/registrations", "registrations")
        statuses = Counter(r["status"] for r in registrations)
        assert statuses["approved"] and statuses["rejected"] and statuses["submitted"], statuses
        orders = await _count(client, "/api/v1/orders", "orders")
        assert len(orders) == len(world.orders)
        states = Counter(o["status"] for o in orders)
        assert states["cancelled"] and states["submitted"], states
        assert states["shipped"] + states["completed"] >= len(world.orders) // 2, states
        uploads = await _count(client, "/api/v1/flow/uploads", "uploads")
        assert Counter(u["status"] for u in uploads) >= Counter({"accepted": 1, "rejected": 1})
        programs = await _count(client, "/api/v1/rebate-programs", "programs")
        assert len(programs) == 2

        # The files carry what hospitals paid, so sell-through earns commission.
        async def commission_earned():
            accruals = await _count(client, "/api/v1/accruals", "accruals")
            return sum(int(a["amount"]["amount_minor"]) for a in accruals
                       if a["kind"] == "commission" and a["source_type"] == "flow_upload") > 0

        assert await eventually(commission_earned, timeout=30)
        notices = await _count(client, "/api/v1/notices", "notices")
        assert len(notices) == len(NOTICES)
        everyone = next(n for n in notices if n["title"] == NOTICES[0].title)
        # Partial reads: some of the dealer users read it, some confirmed, not all.
        assert 0 < everyone["confirmed_count"] < everyone["read_count"] \
            < everyone["recipient_count"], everyone
        materials = await _count(client, "/api/v1/materials", "materials")
        assert sorted(len(m["versions"]) for m in materials) == sorted(
            len(m.versions) for m in MATERIALS)
        assert await _count(client, "/api/v1/material-usage", "usage")
        listed = {path: len(await _count(client, path, key)) for path, key in LISTS.items()}
        assert all(listed.values()), listed

        # HQ's follow-up rules: approved registrations opened visit tasks; the visit
        # notes closed two of every three, the rest stay open.
        async def visit_tasks() -> Counter | None:
            tasks = await _count(client, "/api/v1/tasks", "tasks")
            states = Counter(t["status"] for t in tasks if t["rule_name"] == SOP_RULES[0]["name"])
            return states if states["done"] and states["open"] else None

        assert await eventually(visit_tasks, timeout=30)

    # Every role named at the end can sign in with the printed password.
    for role, login in first["logins"].items():
        if role in ("hq_admin", "service_erp", "password"):
            continue
        assert await suite.login(login, PASSWORD), role

    again = await run_demo("small", suite.base_url, order_addr, ADMIN_PASSWORD)
    assert {k: v for k, v in again["sent"].items() if v} == {}, again["sent"]
    async with suite.client(admin) as client:
        assert len(await _count(client, "/api/v1/orders", "orders")) == len(world.orders)

    await _notices_reach_the_inbox(suite, admin, first["logins"]["dealer_admin"])


async def _inbox(suite, token: str) -> list[dict]:
    async with suite.client(token) as client:
        return await _count(client, "/api/v1/inbox", "items")


async def _notices_reach_the_inbox(suite, admin: str, username: str) -> None:
    """Each notice that reaches a dealer's user is in their inbox once; HQ's reminder
    of a notice they have not read (the demo's dealer admins read none) adds one item."""
    user = await suite.login(username, PASSWORD)
    async with suite.client(user) as client:
        reaching = {n["id"]: n for n in await _count(client, "/api/v1/notices", "notices")}
    assert reaching

    async def published() -> list[dict]:
        items = [i for i in await _inbox(suite, user) if i["kind"] == "notice.published"]
        return items if len(items) == len(reaching) else None

    items = await eventually(published, timeout=30)
    assert sorted(i["ref_id"] for i in items) == sorted(reaching)
    assert {i["title"] for i in items} == {n["title"] for n in reaching.values()}

    unread = next(iter(reaching.values()))
    async with suite.client(admin) as client:
        answer = await client.post(f"/api/v1/notices/{unread['id']}/remind")
        assert answer.status_code == 200, answer.text
        assert int(answer.json()["reminded_users"]) >= 1

    async def reminded() -> list[dict]:
        items = [i for i in await _inbox(suite, user) if i["kind"] == "notice.reminded"]
        return items or None

    assert [i["ref_id"] for i in await eventually(reminded, timeout=30)] == [unread["id"]]
