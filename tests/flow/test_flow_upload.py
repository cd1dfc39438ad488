"""Sell-through uploads end to end: through the gateway, against shipments the ERP
pushed over gRPC and hospitals registered in registration."""

from __future__ import annotations

import asyncio

from tests.flow.support import (
    build_flow_world,
    caught_up,
    codes,
    csv_bytes,
    errors_of,
    finished,
    ship,
    upload,
)
from tests.harness import ADMIN_PASSWORD
from tests.world import gtin

UDI = "(01){gtin}(17)281231(10){batch}"


async def test_an_upload_whose_rows_all_pass_is_accepted(suite):
    flow = await build_flow_world(suite)
    try:
        await ship(flow, "a", [{"product": "A-001", "batch": "L1", "quantity": 10},
                               {"product": "A-002", "batch": "L2", "quantity": 5}])
        await caught_up(suite)
        content = csv_bytes([
            ["2026-03-05", "瑞金医院", "心内科", "A-001", UDI.format(gtin=gtin(1), batch="L1"),
             "L1", "2028-12-31", "", "4", "400.00"],
            ["2026/3/6", "复旦大学附属中山医院", "ICU", "A-002", "", "L2", "", "", "2盒", "¥250"],
        ])
        queued = await upload(flow, "a", content, params={"period_start": "2026-03-01",
                                                          "period_end": "2026-03-31"})
        assert queued["status"] in ("queued", "validating")
        done = await finished(flow, queued["id"])
        assert done["status"] == "accepted", (done, await errors_of(flow, queued["id"]))
        assert done["total_quantity"] == 6
        assert done["total_amount"]["amount_minor"] == 65_000
        async with flow.client("a") as client:
            rows = (await client.get("/api/v1/flow/rows")).json()["rows"]
        assert {(r["product_code"], r["batch"], r["quantity"], r["customer_id"]) for r in rows} == {
            ("A-001", "L1", 4, flow.customers["ruijin"]),
            ("A-002", "L2", 2, flow.customers["zhongshan"])}
        async with flow.client("b") as client:
            assert (await client.get("/api/v1/flow/rows")).json()["rows"] == []
            response = await client.get(f"/api/v1/flow/uploads/{queued['id']}")
            assert response.status_code == 404
    finally:
        await flow.close()


async def test_a_failing_row_rejects_the_whole_upload_with_reasons(suite):
    flow = await build_flow_world(suite)
    try:
        await ship(flow, "a", [{"product": "A-001", "batch": "L1", "quantity": 3}])
        await caught_up(suite)
        content = csv_bytes([
            ["2026-03-05", "瑞金医院", "", "A-001", "", "L1", "", "", "2", ""],
            ["2026-03-05", "不存在的医院", "", "A-001", "", "L1", "", "", "1", ""],
            ["2026-03-05", "瑞金医院", "", "A-001", "", "L1", "", "", "5", ""],
            ["yesterday", "瑞金医院", "", "A-001", "", "L1", "", "", "1", ""],
        ])
        queued = await upload(flow, "a", content)
        done = await finished(flow, queued["id"])
        assert done["status"] == "rejected"
        found = codes(await errors_of(flow, queued["id"]))
        assert {"UNKNOWN_HOSPITAL", "EXCEEDS_STOCK", "BAD_DATE"} <= found, found
        async with flow.client("a") as client:
            assert (await client.get("/api/v1/flow/rows")).json()["rows"] == []
    finally:
        await flow.close()


async def test_projections_rebuild_by_replay_and_validation_goes_on(suite):
    from suite.cli import main as qudao
    from suite.flowops import rebuild

    flow = await build_flow_world(suite)
    try:
        await ship(flow, "a", [{"product": "A-001", "batch": "RB", "quantity": 4}])
        await ship(flow, "b", [{"product": "A-002", "batch": "RB2", "quantity": 2}])
        await caught_up(suite)
        addr = f"127.0.0.1:{suite.ports['flow']}"
        shipments = await rebuild(addr, flow.admin_token, "shipments")
        assert shipments.events_replayed == 2 and shipments.rows_written >= 4
        customers = await rebuild(addr, flow.admin_token, "customers")
        assert customers.events_replayed == 3
        # The command line does the same, signed in with a password.
        await asyncio.to_thread(qudao, [
            "flow", "rebuild", "dealers", "--addr", addr, "--identity-addr",
            f"127.0.0.1:{suite.ports['identity']}", "--password", ADMIN_PASSWORD])
        # Events replayed were recorded in the inbox: the live consumer does not count
        # them twice, and stock is what it was.
        await ship(flow, "a", [{"product": "A-001", "batch": "RB", "quantity": 1}])
        await caught_up(suite)
        queued = await upload(flow, "a", csv_bytes([
            ["2026-03-05", "瑞金医院", "", "A-001", "", "RB", "", "", "5", ""]]))
        assert (await finished(flow, queued["id"]))["status"] == "accepted"
        too_many = await upload(flow, "a", csv_bytes([
            ["2026-03-06", "瑞金医院", "", "A-001", "", "RB", "", "", "1", ""]]))
        assert (await finished(flow, too_many["id"]))["status"] == "rejected"
        async with flow.client("a") as client:
            response = await client.post("/api/v1/flow/uploads", content=b"x")
        assert response.status_code == 201  # no dealer_id: the caller's own dealer
        async with flow.client("admin") as admin:
            refused = await admin.post("/api/v1/flow/uploads", content=b"x")
        assert refused.status_code == 400  # HQ names the dealer
    finally:
        await flow.close()


async def test_a_short_receipt_lowers_what_the_dealer_may_report(suite):
    flow = await build_flow_world(suite)
    try:
        shipment_id = await ship(flow, "a", [{"product": "A-001", "batch": "RC",
                                              "quantity": 5}])
        async with flow.client("a") as client:
            response = await client.post(f"/api/v1/shipments/{shipment_id}/receipt", json={
                "lines": [{"shipment_line_no": 1, "quantity_received": 3}]})
            assert response.status_code == 201, response.text
        await caught_up(suite)
        four = await upload(flow, "a", csv_bytes([
            ["2026-03-05", "瑞金医院", "", "A-001", "", "RC", "", "", "4", ""]]))
        assert (await finished(flow, four["id"]))["status"] == "rejected"
        assert "EXCEEDS_STOCK" in codes(await errors_of(flow, four["id"]))
        three = await upload(flow, "a", csv_bytes([
            ["2026-03-05", "瑞金医院", "", "A-001", "", "RC", "", "", "3", ""]]))
        assert (await finished(flow, three["id"]))["status"] == "accepted"
    finally:
        await flow.close()
