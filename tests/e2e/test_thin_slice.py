"""The thin slice through the whole suite: a dealer logs in through the gateway, submits
an order, HQ approves it, the incentive service consumes the approval and accrues a
commission (a rule on approved orders; nothing is booked on submission), and the dealer
reads it back through the gateway."""

from __future__ import annotations

import pytest

from tests.conftest import require_postgres
from tests.harness import Suite, eventually
from tests.world import build_world


async def run_thin_slice(suite: Suite) -> None:
    world = await build_world(suite)
    dealer = world.dealers[0]
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/commission-rules", json={"rule": {
            "name": "订单佣金", "base": "approved_orders", "base_rate_bps": 200,
            "valid_from": "2000-01-01"}})
        assert response.status_code == 201, response.text
    async with suite.client(dealer.token) as client:
        response = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 4},
                      {"product_code": "A-002", "quantity": 1}],
            "client_order_ref": "PO-2026-0001"})
        assert response.status_code == 201, response.text
        order = response.json()
        assert order["dealer_id"] == dealer.id
        assert order["status"] == "submitted"
        assert order["total"] == {"amount_minor": 4 * 12_500 + 25_000, "currency": "CNY"}
        assert [line["quantity_ordered"] for line in order["lines"]] == [4, 1]
        assert (await client.get("/api/v1/accruals")).json()["accruals"] == []
        async with suite.client(world.admin_token) as admin:
            for stage in ("channel_manager", "finance"):
                response = await admin.post(f"/api/v1/orders/{order['id']}/approve",
                                            json={"stage": stage})
                assert response.status_code == 200, response.text

        async def accrual():
            listed = await client.get("/api/v1/accruals", params={"source_id": order["id"]})
            assert listed.status_code == 200, listed.text
            return listed.json()["accruals"]

        accruals = await eventually(accrual, timeout=15)
        assert len(accruals) == 1
        commission = accruals[0]
        assert commission["kind"] == "commission"
        assert commission["dealer_id"] == dealer.id
        assert commission["base_amount"]["amount_minor"] == 75_000
        assert commission["amount"]["amount_minor"] == 1_500  # the rule's 2%

        # The same reference again is the same order, not a second one.
        again = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 4},
                      {"product_code": "A-002", "quantity": 1}],
            "client_order_ref": "PO-2026-0001"})
        assert again.json()["id"] == order["id"]

    # The other dealer sees neither the order nor its accrual.
    other = world.dealers[1]
    async with suite.client(other.token) as client:
        assert (await client.get(f"/api/v1/orders/{order['id']}")).status_code == 404
        listed = await client.get("/api/v1/accruals")
        assert listed.json()["accruals"] == []
        assert (await client.get(f"/api/v1/accruals/{commission['id']}")).status_code == 404


async def test_thin_slice_on_sqlite(suite):
    await run_thin_slice(suite)


@pytest.mark.postgres
async def test_thin_slice_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_thin_slice(suite)
    finally:
        await suite.stop()
