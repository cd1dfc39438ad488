"""Concurrent registrations of one hospital resolve to exactly one winner, enforced by
the database (a UNIQUE slot per customer × product line); everyone else gets the
winner's evidence. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite
from tests.registration.conftest import registration_options
from tests.registration.helpers import add_dealer, hospital_code
from tests.world import build_world

ACTIVE = {"submitted", "under_review", "approved"}


async def hundred_at_once(suite: Suite, expect_winner_status: str) -> None:
    world = await build_world(suite)
    dealer_ids = [d.id for d in world.dealers]
    for index in range(8):
        dealer_ids.append(await add_dealer(suite, world, f"上海并发经销商{index}号有限公司",
                                           ["310000"], ["A系列"], serial=100 + index))
    customer = {"name": "上海交通大学医学院附属瑞金医院", "credit_code": hospital_code(7),
                "address": "上海市黄浦区瑞金二路197号"}
    async with suite.client(world.admin_token) as hq:
        async def submit(index: int):
            return await hq.post("/api/v1/registrations", json={
                "dealer_id": dealer_ids[index % len(dealer_ids)], "product_line": "A系列",
                "customer": customer})

        responses = await asyncio.gather(*(submit(i) for i in range(100)))
        assert all(r.status_code in (201, 409) for r in responses), [
            r.text for r in responses if r.status_code not in (201, 409)][:3]
        created = [r.json() for r in responses if r.status_code == 201]
        winners = [r for r in created if (r["status"] in ACTIVE and not r.get("conflict_id"))
                   or r["status"] == "approved"]
        listed = (await hq.get("/api/v1/registrations", params={"page_size": 500})).json()
        holding = [r for r in listed["registrations"]
                   if r["status"] in ("submitted", "approved")]
        assert len(holding) == 1, holding
        winner = holding[0]
        assert winner["status"] == expect_winner_status
        assert [w["id"] for w in winners] == [winner["id"]]
        assert len({r["customer_id"] for r in created}) == 1  # one customer, not 100
        for response in responses:
            body = response.json()
            if response.status_code == 409:
                assert body["reason"] == "ALREADY_REGISTERED"
                assert body["metadata"]["registration_id"] == winner["id"]
            elif body["id"] != winner["id"]:
                assert body["status"] in ("rejected", "under_review")
                claims = {c["registration_id"] for e in body["evidence"] for c in e["claims"]}
                assert winner["id"] in claims
        customers = (await hq.get("/api/v1/customers", params={"query": "瑞金"})).json()
        assert customers["page"]["total_size"] == 1


@pytest.mark.registration_options(auto_approve="clean")
async def test_hundred_concurrent_registrations_one_winner(suite):
    await hundred_at_once(suite, "approved")


@pytest.mark.postgres
async def test_hundred_concurrent_registrations_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres", options=registration_options()).start()
    try:
        await hundred_at_once(suite, "submitted")
    finally:
        await suite.stop()
