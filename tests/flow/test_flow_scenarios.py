"""Flow scenarios through the gateway: a platform dealer's transfer and its sub-dealer's
sale, a replacement, a diversion seen and resolved, the error report and progress
events, accepted flow and its export, and the bad input of the issue; the same story
on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from openpyxl import Workbook, load_workbook
from qudao.order.v1 import order_pb2

from tests.conftest import require_postgres
from tests.flow.support import (
    HEADER,
    approved_order,
    build_flow_world,
    caught_up,
    channel_stock,
    codes,
    csv_bytes,
    errors_of,
    finished,
    ship,
    upload,
)
from tests.harness import Suite
from tests.order.support import shipment


def sale(day="2026-03-05", hospital="瑞金医院", product="A-001", batch="L1", quantity="1",
         serial="", udi="") -> list[str]:
    return [day, hospital, "心内科", product, udi, batch, "", serial, quantity, ""]


async def transfer_story(flow) -> None:
    """The platform dealer transfers part of a batch to its sub-dealer, which sells it."""
    order = await approved_order(flow, "platform")
    # Streamed from the ERP, as a month-end push would come.
    reply = await flow.erp.stream([order_pb2.StreamShipmentsRequest(shipments=[shipment(
        "FLOW-STREAM-1", flow.dealers["platform"],
        [{"order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
          "batch": "LP", "quantity": 20, "serials": []}], ship_date="2026-03-02")])])
    assert reply.summary.accepted == 1, reply
    await caught_up(flow.suite)
    sub_name = "上海sub医疗器械有限公司"
    moved = await upload(flow, "platform", csv_bytes([
        sale(hospital=sub_name, batch="LP", quantity="8"),
        sale(hospital="中山医院", batch="LP", quantity="2")]))
    done = await finished(flow, moved["id"])
    assert done["status"] == "accepted", await errors_of(flow, moved["id"])
    assert done["transfer_rows"] == 1
    sold = await upload(flow, "sub", csv_bytes([sale(day="2026-03-06", batch="LP",
                                                     quantity="8")]))
    assert (await finished(flow, sold["id"]))["status"] == "accepted", \
        await errors_of(flow, sold["id"])
    # Everything that reached the sub-dealer is sold: one more unit is refused.
    more = await upload(flow, "sub", csv_bytes([sale(day="2026-03-07", batch="LP")]))
    assert (await finished(flow, more["id"]))["status"] == "rejected"
    assert "EXCEEDS_STOCK" in codes(await errors_of(flow, more["id"]))
    # Order's channel inventory follows: the platform dealer sold 2 and transferred 8
    # (both leave it); the sub-dealer received the 8 and sold them.
    await channel_stock(flow, "platform", "LP", {"A-001": (20, 10)})
    await channel_stock(flow, "sub", "LP", {"A-001": (8, 8)})
    # The platform dealer sees its sub-dealer's accepted flow; the sub-dealer not the
    # platform dealer's.
    async with flow.client("platform") as client:
        rows = (await client.get("/api/v1/flow/rows")).json()["rows"]
    assert {r["dealer_id"] for r in rows} == {flow.dealers["platform"], flow.dealers["sub"]}
    async with flow.client("sub") as client:
        rows = (await client.get("/api/v1/flow/rows")).json()["rows"]
    assert {r["dealer_id"] for r in rows} == {flow.dealers["sub"]}


async def test_a_transfer_to_a_sub_dealer_and_its_sale(suite):
    flow = await build_flow_world(suite)
    try:
        await transfer_story(flow)
    finally:
        await flow.close()


@pytest.mark.postgres
async def test_the_transfer_story_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        flow = await build_flow_world(suite)
        try:
            await transfer_story(flow)
            await replacement_story(flow)
        finally:
            await flow.close()
    finally:
        await suite.stop()


async def replacement_story(flow) -> None:
    await ship(flow, "a", [{"product": "A-002", "batch": "R1", "quantity": 10}])
    await caught_up(flow.suite)
    march = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    first = await upload(flow, "a", csv_bytes([sale(product="A-002", batch="R1",
                                                    quantity="10")]), params=march)
    assert (await finished(flow, first["id"]))["status"] == "accepted"
    await channel_stock(flow, "a", "R1", {"A-002": (10, 10)})
    second = await upload(flow, "a", csv_bytes([
        sale(product="A-002", batch="R1", quantity="6"),
        sale(product="A-002", batch="R1", quantity="3", hospital="上海市第一人民医院")]),
        params={**march, "replaces_upload_id": first["id"]})
    done = await finished(flow, second["id"])
    assert done["status"] == "accepted", await errors_of(flow, second["id"])
    assert done["replaces_upload_id"] == first["id"]
    async with flow.client("a") as client:
        old = (await client.get(f"/api/v1/flow/uploads/{first['id']}")).json()
        rows = (await client.get("/api/v1/flow/rows", params={"batch": "R1"})).json()["rows"]
    assert old["status"] == "superseded" and old["superseded_by_upload_id"] == second["id"]
    assert sorted(r["quantity"] for r in rows) == [3, 6]
    # The replacement superseded the first upload: its 10 came back, its own 6 + 3 went.
    await channel_stock(flow, "a", "R1", {"A-002": (10, 9)})
    async with flow.client("admin") as admin:
        response = await admin.post("/api/v1/flow/period-close",
                                    json={"closed_through": "2026-03-31"})
        assert response.status_code == 200, response.text
    async with flow.client("a") as client:
        response = await client.post(
            "/api/v1/flow/uploads", content=csv_bytes([sale(product="A-002", batch="R1")]),
            params={"dealer_id": flow.dealers["a"], "replaces_upload_id": second["id"], **march},
            headers={"content-type": "text/csv"})
    assert response.status_code == 409, response.text


async def test_a_replacement_supersedes_until_the_period_closes(suite):
    flow = await build_flow_world(suite)
    try:
        await replacement_story(flow)
    finally:
        await flow.close()


async def test_a_diversion_is_flagged_seen_by_hq_and_the_managers_and_resolved(suite):
    flow = await build_flow_world(suite)
    try:
        shipped = await ship(flow, "b", [{"product": "A-001", "batch": "DB",
                                          "quantity": 5, "serials": []}])
        await caught_up(suite)
        attempt = await upload(flow, "a", csv_bytes([sale(batch="DB", quantity="2")]))
        assert (await finished(flow, attempt["id"]))["status"] == "rejected"
        assert "DIVERTED" in codes(await errors_of(flow, attempt["id"]))
        async with flow.client("cm") as manager:
            listed = (await manager.get("/api/v1/flow/diversions")).json()["diversions"]
        assert len(listed) == 1
        diversion = listed[0]
        assert (diversion["selling_dealer_id"], diversion["shipped_dealer_id"],
                diversion["shipment_id"], diversion["quantity"], diversion["status"]) == (
            flow.dealers["a"], flow.dealers["b"], shipped, 2, "open")
        async with flow.client("a") as dealer:
            assert (await dealer.get("/api/v1/flow/diversions")).status_code == 403
        async with flow.client("cm") as manager:
            response = await manager.post(f"/api/v1/flow/diversions/{diversion['id']}/resolve",
                                          json={"status": "confirmed", "note": "查实"})
            assert response.status_code == 403
        async with flow.client("admin") as admin:
            response = await admin.post(f"/api/v1/flow/diversions/{diversion['id']}/resolve",
                                        json={"status": "confirmed", "note": "窜货属实"})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "confirmed"
    finally:
        await flow.close()


async def test_error_report_progress_events_form_upload_and_export(suite):
    flow = await build_flow_world(suite)
    try:
        await ship(flow, "a", [{"product": "A-001", "batch": "L1", "quantity": 5}])
        await caught_up(suite)
        bad = await upload(flow, "a", csv_bytes([sale(), sale(hospital="@SUM(1+1)")]),
                           filename="三月流向.csv", form=True)
        async with flow.client("a") as client:
            async with client.stream("GET", f"/api/v1/flow/uploads/{bad['id']}/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = [line async for line in stream.aiter_lines() if line]
        assert events[-2] == "event: done"
        final = json.loads(events[-1].removeprefix("data: "))
        assert final["status"] == "rejected" and final["progress_percent"] == 100
        assert final["filename"] == "三月流向.csv"
        async with flow.client("a") as client:
            response = await client.get(f"/api/v1/flow/uploads/{bad['id']}/error-report")
        assert response.status_code == 200
        assert "attachment" in response.headers["content-disposition"]
        sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
        cells = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert cells[0][:len(HEADER)] == HEADER and "Errors" in cells[0][-1]
        assert cells[1][-1] is None
        assert cells[2][1] == "'@SUM(1+1)" and "UNKNOWN" not in cells[2][-1]
        assert "医院" in cells[2][-1]
        good = await upload(flow, "a", csv_bytes([sale(quantity="3")]))
        assert (await finished(flow, good["id"]))["status"] == "accepted"
        async with flow.client("a") as client:
            response = await client.get("/api/v1/flow/rows/export",
                                        params={"sold_from": "2026-03-01"})
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
        exported = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert len(exported) == 2 and exported[1][9] == "L1" and exported[1][12] == "3"
    finally:
        await flow.close()


def _xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_bad_input_gets_a_clear_result_and_nothing_is_partly_accepted(suite):
    flow = await build_flow_world(suite)
    try:
        await ship(flow, "a", [{"product": "A-001", "batch": "L1", "quantity": 5}])
        await caught_up(suite)
        empty = await upload(flow, "a", b"", expect=400)
        assert "empty" in empty["detail"]
        truncated = await upload(flow, "a", csv_bytes([sale()]), expect=400,
                                 params={"size_bytes": 10_000})
        assert "cut short" in truncated["detail"]
        failing = {
            "headers only": (csv_bytes([]), "no data rows"),
            "unknown headers": (b"foo,bar\n1,2\n", "missing required columns"),
            "mixed encodings": ("\n".join([",".join(HEADER), ",".join(sale())]).encode()
                                + "\n瑞金医院\n".encode("gbk"), "mixes encodings"),
            "broken xlsx": (_xlsx([sale()])[:2000], "XLSX"),
            "garbage": (bytes(range(1, 256)) * 4000, ""),
        }
        for name, (content, message) in failing.items():
            queued = await upload(flow, "a", content,
                                  filename="x.xlsx" if "xlsx" in name else "x.csv")
            done = await finished(flow, queued["id"])
            assert done["status"] == "failed", (name, done)
            assert message in done["failure_message"], (name, done["failure_message"])
        formula = await upload(flow, "a", _xlsx([sale(), ["=TODAY()", *sale()[1:]]]),
                               filename="公式.xlsx")
        done = await finished(flow, formula["id"])
        assert done["status"] == "rejected", done["failure_message"]
        assert "FORMULA" in codes(await errors_of(flow, formula["id"]))
        huge_cell = await upload(flow, "a", csv_bytes([sale(hospital="医" * 10_000_000)]))
        assert (await finished(flow, huge_cell["id"]))["status"] == "rejected"
        assert "CELL_TOO_LONG" in codes(await errors_of(flow, huge_cell["id"]))
        million = b"x,y\n" + b"\xff\xfe garbage,1\n" * 1_000_000
        queued = await upload(flow, "a", million)
        done = await finished(flow, queued["id"], timeout=120)
        assert done["status"] == "failed"
        # The same file twice at once: one is accepted, the other finds it reported.
        content = csv_bytes([sale(quantity="5")])
        first, second = await asyncio.gather(upload(flow, "a", content),
                                             upload(flow, "a", content))
        outcomes = sorted([(await finished(flow, first["id"]))["status"],
                           (await finished(flow, second["id"]))["status"]])
        assert outcomes == ["accepted", "rejected"]
        async with flow.client("a") as client:
            rows = (await client.get("/api/v1/flow/rows")).json()["rows"]
        assert sum(r["quantity"] for r in rows) == 5
    finally:
        await flow.close()


async def test_a_merged_hospital_is_sold_to_under_the_one_kept(suite):
    """The same hospital entered twice; dealer a reports sales under the second entry.
    HQ merges it into the first: the rows already accepted and the ones reported later
    under the old name are all the kept hospital's, and no stale entry stays in flow's
    hospital directory (the old name resolves to one customer, not two)."""
    flow = await build_flow_world(suite)
    try:
        async with flow.client("admin") as admin:
            ids = []
            for name in ("上海市肺科医院", "同济大学附属上海市肺科医院"):
                response = await admin.post("/api/v1/customers", json={
                    "name": name, "division_code": "310110", "departments": ["心内科"]})
                assert response.status_code == 201, response.text
                ids.append(response.json()["customer"]["id"])
        kept, merged = ids
        await ship(flow, "a", [{"product": "A-001", "batch": "LM", "quantity": 10}])
        await caught_up(suite)
        before = await upload(flow, "a", csv_bytes([
            sale(hospital="同济大学附属上海市肺科医院", batch="LM", quantity="2")]))
        assert (await finished(flow, before["id"]))["status"] == "accepted", \
            await errors_of(flow, before["id"])

        async with flow.client("admin") as admin:
            response = await admin.post(f"/api/v1/customers/{kept}/merge", json={
                "merged_customer_id": merged, "note": "同一家医院"})
            assert response.status_code == 200, response.text
        await caught_up(suite)

        after = await upload(flow, "a", csv_bytes([
            sale(day="2026-03-06", hospital="同济大学附属上海市肺科医院", batch="LM",
                 quantity="3")]))
        assert (await finished(flow, after["id"]))["status"] == "accepted", \
            await errors_of(flow, after["id"])
        async with flow.client("a") as dealer:
            rows = (await dealer.get("/api/v1/flow/rows", params={"batch": "LM"})).json()["rows"]
        assert sorted((r["customer_id"], r["quantity"]) for r in rows) == [(kept, 2), (kept, 3)]
        async with flow.client("a") as dealer:
            rows = (await dealer.get("/api/v1/flow/rows",
                                     params={"customer_id": merged})).json().get("rows", [])
        assert rows == []
    finally:
        await flow.close()
