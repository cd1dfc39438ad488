"""`qudao erp push` covers every ERP operation of order's gRPC API from JSON, CSV or XLSX:
a return completed end to end with the CLI (products and prices in, shipment out, the
dealer receives and returns, the ERP confirms the goods arrived and credits them)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys

from openpyxl import Workbook

from tests.e2e.test_exports_and_ledger import approved_order
from tests.order.support import STAFF_PASSWORD, add_staff


def write_csv(path, rows: list[list]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)


def write_xlsx(path, rows: list[list]) -> None:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)


async def qudao_erp(suite, *args) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUDAO_")}
    env.update(QUDAO_ERP_USERNAME="erp.user", QUDAO_ERP_PASSWORD=STAFF_PASSWORD)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "suite.cli", "erp", "push", *map(str, args),
        "--addr", f"127.0.0.1:{suite.ports['order']}",
        "--identity-addr", f"127.0.0.1:{suite.ports['identity']}",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode, json.loads(out) if out.strip() else {}, err.decode()


async def test_a_return_completed_end_to_end_with_the_cli(suite, world, tmp_path):
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]

    products = tmp_path / "products.csv"
    write_csv(products, [
        ["code", "name", "gtin", "product_line", "unit", "list_price_minor", "serial_tracked"],
        ["B-100", "中心静脉导管", "06900000001004", "A系列", "套", "88000", "no"]])
    code, report, err = await qudao_erp(suite, products)
    assert code == 0, (err, report)
    assert report["products"]["created"] == 1

    prices = tmp_path / "prices.xlsx"
    write_xlsx(prices, [
        ["name", "tier", "valid_from", "items.product_code", "items.unit_price_minor"],
        ["一级 2026", "one", "2026-01-01", "B-100", 80000],
        ["一级 2026", "one", "2026-01-01", "A-001", 11000]])
    code, report, err = await qudao_erp(suite, prices, "--kind", "price_lists")
    assert code == 0, (err, report)
    assert report["price_lists"] == {"accepted": 1, "rejected": 0}

    order = await approved_order(suite, world, staff, dealer, "", product_code="B-100",
                                 quantity=5)
    assert order["lines"][0]["unit_price"]["amount_minor"] == 80000

    shipments = tmp_path / "shipments.csv"
    write_csv(shipments, [
        ["shipment_id", "dealer_id", "ship_date", "carrier", "lines.line_no",
         "lines.order_id", "lines.order_line_no", "lines.product_code", "lines.batch",
         "lines.expiry_date", "lines.quantity"],
        ["S-CLI", dealer.id, "2026-11-02", "顺丰", "1", order["id"], "1", "B-100", "L1",
         "2029-06-30", "5"]])
    code, report, err = await qudao_erp(suite, shipments)
    assert code == 0, (err, report)
    assert report["shipments"]["accepted"] == 1

    async with suite.client(dealer.token) as client:
        response = await client.post("/api/v1/shipments/S-CLI/receipt", json={})
        assert response.status_code == 201, response.text
        response = await client.post("/api/v1/returns", json={
            "reason": "包装破损", "lines": [{"product_code": "B-100", "batch": "L1",
                                         "quantity": 2, "shipment_id": "S-CLI"}]})
        assert response.status_code == 201, response.text
        return_id = response.json()["id"]
    async with suite.client(staff.service_token) as service:
        response = await service.post(f"/api/v1/returns/{return_id}/approve", json={})
        assert response.status_code == 200, response.text

    receipts = tmp_path / "return_receipts.csv"
    write_csv(receipts, [["return_id", "received_on"], [return_id, "2026-11-20"]])
    # A dry run reads and checks the file, sends nothing.
    code, report, err = await qudao_erp(suite, receipts, "--dry-run")
    assert code == 0, (err, report)
    assert report == {"dry_run": True, "return_receipts": {"documents": 1, "lines": 0},
                      "problems": []}
    async with suite.client(dealer.token) as client:
        assert (await client.get(f"/api/v1/returns/{return_id}")).json()["status"] == "approved"
    code, report, err = await qudao_erp(suite, receipts, "--report", tmp_path / "report.json")
    assert code == 0, (err, report)
    assert report["return_receipts"] == {"accepted": 1, "rejected": 0}
    assert json.loads((tmp_path / "report.json").read_text()) == report

    credit_notes = tmp_path / "credit_notes.xlsx"
    write_xlsx(credit_notes, [
        ["invoice_id", "dealer_id", "invoice_no", "issued_on", "amount_minor", "return_id"],
        ["CN-1", dealer.id, "红字0001", "2026-11-21", 160000, return_id]])
    invoices = tmp_path / "ledger.json"
    invoices.write_text(json.dumps({"invoices": [{
        "invoice_id": "INV-CLI", "dealer_id": dealer.id, "invoice_no": "0001",
        "issued_on": "2026-11-03", "amount": {"amount_minor": 400000, "currency": "CNY"}}]}))
    payments = tmp_path / "payments.csv"
    write_csv(payments, [
        ["payment_id", "dealer_id", "received_on", "amount_minor", "method",
         "allocations.invoice_id", "allocations.amount_minor"],
        ["PAY-CLI", dealer.id, "2026-11-25", "240000", "bank_transfer", "INV-CLI", "240000"]])
    for path in (invoices, credit_notes, payments):
        code, report, err = await qudao_erp(suite, path)
        assert code == 0, (path.name, err, report)

    async with suite.client(dealer.token) as client:
        returned = (await client.get(f"/api/v1/returns/{return_id}")).json()
        assert returned["status"] == "credited"
        assert returned["credit_note_invoice_id"] == "CN-1"
        inventory = (await client.get("/api/v1/channel-inventory",
                                      params={"batch": "L1"})).json()["items"]
        assert [(i["quantity_returned"], i["quantity_on_hand"]) for i in inventory] == [(2, 3)]
        invoices_seen = (await client.get("/api/v1/invoices")).json()["invoices"]
        assert {(i["invoice_id"], i["kind"]) for i in invoices_seen} == {
            ("INV-CLI", "invoice"), ("CN-1", "credit_note")}
        account = (await client.get(f"/api/v1/dealer-accounts/{dealer.id}")).json()
        assert account["outstanding"]["amount_minor"] == 400000 - 160000 - 240000


async def test_bad_files_name_the_row_and_column(suite, world, tmp_path):
    await add_staff(suite, world)
    shipments = tmp_path / "shipments.csv"
    write_csv(shipments, [["shipment_id", "dealer_id", "lines.quantity"],
                          ["S-1", "d", "three"]])
    code, _, err = await qudao_erp(suite, shipments, "--dry-run")
    assert code == 1 and "row 2, column quantity" in err, err
    unknown = tmp_path / "things.csv"
    write_csv(unknown, [["a"], ["b"]])
    code, _, err = await qudao_erp(suite, unknown, "--dry-run")
    assert code == 1 and "--kind" in err, err
    payments = tmp_path / "payments.csv"
    write_csv(payments, [["payment_id", "dealer_id", "colour"], ["P-1", "d", "red"]])
    code, _, err = await qudao_erp(suite, payments, "--dry-run")
    assert code == 1 and "unknown column 'colour'" in err, err
