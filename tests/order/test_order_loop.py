"""The whole order-to-cash loop through the gateway and the ERP's gRPC API: price list,
submit, two-stage approval, ERP streaming shipments, receipt with a discrepancy, line
closure, a batch return with its credit note, invoice and payment, and a statement the
dealer confirms and exports — on SQLite and on PostgreSQL."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2

from tests.conftest import require_postgres
from tests.harness import Suite
from tests.order.support import Erp, add_staff, shipment
from tests.world import build_world


def cny(amount: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount, currency="CNY")


async def run_loop(suite: Suite) -> None:
    world = await build_world(suite)
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    erp = Erp(suite, staff.erp_token)
    try:
        async with suite.client(staff.finance_token) as finance, \
                suite.client(dealer.token) as client, \
                suite.client(staff.manager_token) as manager, \
                suite.client(staff.service_token) as service:
            # The tier-one price list undercuts A-001's list price.
            response = await finance.put("/api/v1/price-lists", json={
                "tier": "one", "valid_from": "2026-01-01", "name": "一级 2026",
                "items": [{"product_code": "A-001",
                           "unit_price": {"amount_minor": 11_000, "currency": "CNY"}}]})
            assert response.status_code == 200, response.text

            # No credit limit yet: the order goes to the channel manager, then finance.
            response = await client.post("/api/v1/orders", json={
                "client_order_ref": "PO-LOOP-1",
                "lines": [{"product_code": "A-001", "quantity": 10,
                           "expected_unit_price": {"amount_minor": 11_000}},
                          {"product_code": "A-002", "quantity": 5}]})
            assert response.status_code == 201, response.text
            order = response.json()
            order_id = order["id"]
            assert order["status"] == "submitted"
            assert order["awaiting_approval"] == "channel_manager"
            assert order["credit_check"]["passed"] is False
            assert order["total"]["amount_minor"] == 10 * 11_000 + 5 * 25_000

            queue = await manager.get("/api/v1/orders",
                                      params={"awaiting_approval": "channel_manager"})
            assert [o["id"] for o in queue.json()["orders"]] == [order_id]
            # Finance cannot jump the queue.
            early = await finance.post(f"/api/v1/orders/{order_id}/approve",
                                       json={"stage": "finance"})
            assert early.status_code == 409, early.text
            response = await manager.post(f"/api/v1/orders/{order_id}/approve",
                                          json={"stage": "channel_manager", "comment": "ok"})
            assert response.status_code == 200, response.text
            assert response.json()["awaiting_approval"] == "finance"
            response = await finance.post(f"/api/v1/orders/{order_id}/approve",
                                          json={"stage": "finance"})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "approved"
            assert [a["stage"] for a in response.json()["approvals"]] == [
                "channel_manager", "finance"]

            # The ERP streams two messages: two shipments, then a third.
            reply = await erp.stream([
                order_pb2.StreamShipmentsRequest(shipments=[
                    shipment("S-1", dealer.id, [
                        {"order_id": order_id, "order_line_no": 1, "product_code": "A-001",
                         "quantity": 6, "batch": "B1"},
                        {"order_id": order_id, "order_line_no": 2, "product_code": "A-002",
                         "quantity": 5, "batch": "B2"}])]),
                order_pb2.StreamShipmentsRequest(shipments=[
                    shipment("S-2", dealer.id, [
                        {"order_id": order_id, "order_line_no": 1, "product_code": "A-001",
                         "quantity": 2, "batch": "B3"}], ship_date="2026-11-05",
                        waybill="SF101")]),
            ])
            assert reply.messages_committed == 2
            assert reply.summary.accepted == 3 and not reply.problems
            order = (await client.get(f"/api/v1/orders/{order_id}")).json()
            assert order["status"] == "partially_shipped"
            assert [line["quantity_shipped"] for line in order["lines"]] == [8, 5]

            # The dealer sees its shipments and confirms them; one unit arrived damaged.
            shipments = (await client.get("/api/v1/shipments",
                                          params={"unreceived_only": True})).json()
            assert {s["shipment_id"] for s in shipments["shipments"]} == {"S-1", "S-2"}
            response = await client.post("/api/v1/shipments/S-1/receipt", json={"lines": [
                {"shipment_line_no": 1, "quantity_received": 5, "quantity_damaged": 1,
                 "note": "外包装破损"}]})
            assert response.status_code == 201, response.text
            receipt = response.json()
            assert [d["kind"] for d in receipt["discrepancies"]] == ["damage"]
            response = await client.post("/api/v1/shipments/S-2/receipt", json={})
            assert response.status_code == 201, response.text
            again = await client.post("/api/v1/shipments/S-2/receipt", json={})
            assert again.status_code == 409
            discrepancy = receipt["discrepancies"][0]
            response = await service.post(
                f"/api/v1/discrepancies/{discrepancy['id']}/resolve",
                json={"resolution": "write_off", "note": "承运商赔付"})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "resolved"

            # HQ closes the unshippable remainder of line 1; the dealer sees why.
            response = await service.post(f"/api/v1/orders/{order_id}/lines/1/close",
                                          json={"reason": "停产 discontinued"})
            assert response.status_code == 200, response.text
            order = (await client.get(f"/api/v1/orders/{order_id}")).json()
            assert order["lines"][0]["quantity_closed"] == 2
            assert order["lines"][0]["close_reason"] == "停产 discontinued"
            assert order["status"] == "completed"

            # Channel inventory: batch B1 holds 5 (6 shipped, 1 damaged).
            inventory = (await client.get("/api/v1/channel-inventory",
                                          params={"batch": "B1"})).json()["items"]
            assert [(i["batch"], i["quantity_on_hand"]) for i in inventory] == [("B1", 5)]

            # A return can never exceed what the dealer received of the batch.
            too_many = await client.post("/api/v1/returns", json={
                "reason": "近效期", "lines": [{"product_code": "A-001", "batch": "B1",
                                            "quantity": 6}]})
            assert too_many.status_code == 400, too_many.text
            assert too_many.json()["errors"][0]["field"] == "lines[0].quantity"
            response = await client.post("/api/v1/returns", json={
                "reason": "近效期", "client_request_id": "RET-1",
                "lines": [{"product_code": "A-001", "batch": "B1", "quantity": 2,
                           "shipment_id": "S-1"}]})
            assert response.status_code == 201, response.text
            return_id = response.json()["id"]
            response = await service.post(f"/api/v1/returns/{return_id}/approve", json={})
            assert response.status_code == 200, response.text
            received = await erp.return_received(return_id, "2026-11-20")
            assert received.product_return.status == order_pb2.RETURN_STATUS_RECEIVED
            inventory = (await client.get("/api/v1/channel-inventory",
                                          params={"batch": "B1"})).json()["items"]
            assert inventory[0]["quantity_returned"] == 2
            assert inventory[0]["quantity_on_hand"] == 3
            order = (await client.get(f"/api/v1/orders/{order_id}")).json()
            assert order["lines"][0]["quantity_returned"] == 2

            # Invoice, credit note for the return, payment.
            invoiced = await erp.invoice([
                order_pb2.Invoice(invoice_id="INV-1", kind=order_pb2.INVOICE_KIND_INVOICE,
                                  dealer_id=dealer.id, invoice_no="No.0001",
                                  issued_on="2026-11-06", amount=cny(200_000), tax=cny(23_000),
                                  lines=[order_pb2.InvoiceLine(
                                      line_no=1, shipment_id="S-1", shipment_line_no=1,
                                      product_code="A-001", quantity=6,
                                      amount=cny(66_000))]),
                order_pb2.Invoice(invoice_id="CN-1", kind=order_pb2.INVOICE_KIND_CREDIT_NOTE,
                                  dealer_id=dealer.id, issued_on="2026-11-21",
                                  amount=cny(22_000), return_id=return_id)])
            assert invoiced.summary.accepted == 2, invoiced
            paid = await erp.pay([order_pb2.Payment(
                payment_id="PAY-1", dealer_id=dealer.id, received_on="2026-11-15",
                amount=cny(50_000), method="bank_transfer", reference="招行 8899")])
            assert paid.summary.accepted == 1
            product_return = (await client.get(f"/api/v1/returns/{return_id}")).json()
            assert product_return["status"] == "credited"
            assert product_return["credit_note_invoice_id"] == "CN-1"
            account = (await client.get(f"/api/v1/dealer-accounts/{dealer.id}")).json()
            assert account["outstanding"]["amount_minor"] == 200_000 - 22_000 - 50_000

            # Finance issues November's statement; the dealer confirms and exports it.
            response = await finance.post("/api/v1/statements", json={
                "dealer_id": dealer.id, "period_start": "2026-11-01",
                "period_end": "2026-11-30"})
            assert response.status_code == 201, response.text
            statement = response.json()
            assert statement["opening_balance"]["amount_minor"] == 0
            assert statement["closing_balance"]["amount_minor"] == 128_000
            kinds = [line["kind"] for line in statement["lines"]]
            assert {"order", "shipment", "invoice", "payment", "credit_note"} <= set(kinds)
            response = await client.post(f"/api/v1/statements/{statement['id']}/confirm",
                                         json={"comment": "无误"})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "confirmed"
            exported = await client.get(f"/api/v1/statements/{statement['id']}/export")
            assert exported.status_code == 200
            sheet = load_workbook(io.BytesIO(exported.content)).active
            values = [cell for row in sheet.iter_rows(values_only=True) for cell in row]
            assert statement["id"] in values and "INV-1" in values

            # Another dealer sees none of it.
            async with suite.client(world.dealers[1].token) as other:
                assert (await other.get(f"/api/v1/orders/{order_id}")).status_code == 404
                assert (await other.get("/api/v1/shipments/S-1")).status_code == 404
                assert (await other.get(f"/api/v1/statements/{statement['id']}")
                        ).status_code == 404
                assert (await other.get(f"/api/v1/returns/{return_id}")).status_code == 404
                listed = await other.get("/api/v1/channel-inventory")
                assert listed.json()["items"] == []
    finally:
        await erp.close()


async def test_order_loop_on_sqlite(suite):
    await run_loop(suite)


@pytest.mark.postgres
async def test_order_loop_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_loop(suite)
    finally:
        await suite.stop()
