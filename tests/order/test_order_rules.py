"""Bad input and races through the gateway and the ERP gRPC API: bad quantities, prices
that do not match the price list, two approvals racing, credit check and cancellation,
line-by-line ingest rejections under both modes, re-pushes, a payment pushed twice, a
statement whose period receives late shipments, an ERP stream cut off mid-way, rebate
credits consumed from incentive, and the `qudao erp push` client."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc
import nats
import pytest
from qudao.common.v1 import money_pb2
from qudao.incentive.v1 import events_pb2 as incentive_events
from qudao.order.v1 import order_pb2

from shared.bus.envelope import build_envelope
from shared.bus.streams import ensure_stream, stream_config
from tests.conftest import require_postgres
from tests.harness import Suite, eventually
from tests.order.support import Erp, add_staff, shipment
from tests.world import build_world


def cny(amount: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount, currency="CNY")


async def approved_order(suite, world, staff, lines, ref) -> dict:
    """An order taken through both approval stages."""
    async with suite.client(world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={"lines": lines,
                                                             "client_order_ref": ref})
        assert response.status_code == 201, response.text
        order = response.json()
    if order["status"] == "approved":
        return order
    async with suite.client(staff.manager_token) as manager:
        response = await manager.post(f"/api/v1/orders/{order['id']}/approve",
                                      json={"stage": "channel_manager"})
        assert response.status_code == 200, response.text
    async with suite.client(staff.finance_token) as finance:
        response = await finance.post(f"/api/v1/orders/{order['id']}/approve",
                                      json={"stage": "finance"})
        assert response.status_code == 200, response.text
        return response.json()


async def test_bad_order_input_names_each_line(suite, world):
    async with suite.client(world.admin_token) as admin:
        response = await admin.put("/api/v1/price-lists", json={
            "tier": "one", "valid_from": "2026-01-01",
            "items": [{"product_code": "A-002", "unit_price": {"amount_minor": 20_000}}]})
        assert response.status_code == 200, response.text
    async with suite.client(world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={"lines": [
            {"product_code": "A-001", "quantity": -3},
            {"product_code": "A-002", "quantity": 0},
            {"product_code": "A-003", "quantity": 1,
             "expected_unit_price": {"amount_minor": 37_000}},
            {"product_code": "NOPE", "quantity": 1}]})
        assert response.status_code == 400, response.text
        fields = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert set(fields) == {"lines[0].quantity", "lines[1].quantity",
                               "lines[2].expected_unit_price", "lines[3].product_code"}
        assert "37500" in fields["lines[2].expected_unit_price"]
        # The tier's price list wins over the list price, and an old price is refused.
        stale = await client.post("/api/v1/orders", json={"lines": [
            {"product_code": "A-002", "quantity": 1,
             "expected_unit_price": {"amount_minor": 25_000}}]})
        assert stale.status_code == 400
        assert stale.json()["errors"][0]["field"] == "lines[0].expected_unit_price"
        fresh = await client.post("/api/v1/orders", json={"lines": [
            {"product_code": "A-002", "quantity": 2,
             "expected_unit_price": {"amount_minor": 20_000}}]})
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["total"]["amount_minor"] == 40_000
        listed = await client.get("/api/v1/orders")
        assert listed.json()["page"]["total_size"] == 1  # nothing half-stored


async def run_approval_race(suite: Suite, world) -> None:
    staff = await add_staff(suite, world)
    async with suite.client(world.dealers[0].token) as client:
        order = (await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 2}]})).json()
    assert order["awaiting_approval"] == "channel_manager"
    async with suite.client(staff.manager_token) as one, \
            suite.client(world.admin_token) as two:
        responses = await asyncio.gather(*(
            client.post(f"/api/v1/orders/{order['id']}/approve",
                        json={"stage": "channel_manager"})
            for client in (one, two, one, two)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409], [r.text for r in responses]
    async with suite.client(staff.finance_token) as finance, \
            suite.client(world.admin_token) as admin:
        responses = await asyncio.gather(
            finance.post(f"/api/v1/orders/{order['id']}/approve", json={"stage": "finance"}),
            admin.post(f"/api/v1/orders/{order['id']}/reject",
                       json={"stage": "finance", "reason": "重复订单"}))
        assert sorted(r.status_code for r in responses) == [200, 409]
        final = (await admin.get(f"/api/v1/orders/{order['id']}")).json()
    assert [a["stage"] for a in final["approvals"]] == ["channel_manager", "finance"]
    assert final["status"] in ("approved", "rejected")


async def test_two_approvals_race_exactly_one_wins(suite, world):
    await run_approval_race(suite, world)


@pytest.mark.postgres
async def test_two_approvals_race_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_approval_race(suite, await build_world(suite))
    finally:
        await suite.stop()


async def test_credit_check_rejection_and_cancellation(suite, world):
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    async with suite.client(staff.finance_token) as finance:
        response = await finance.put(f"/api/v1/dealer-accounts/{dealer.id}/credit-limit", json={
            "credit_limit": {"amount_minor": 100_000}, "payment_terms_days": 45,
            "reason": "年度授信"})
        assert response.status_code == 200, response.text
        assert response.json()["available_credit"]["amount_minor"] == 100_000
    async with suite.client(dealer.token) as client:
        # Within the limit: approved automatically.
        first = (await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 4}]})).json()
        assert first["status"] == "approved", first
        assert first["approvals"][0]["stage"] == "auto"
        # 50,000 open + 75,000 > 100,000: routed to the channel manager.
        second = (await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-003", "quantity": 2}]})).json()
        assert second["status"] == "submitted"
        assert second["credit_check"]["open_orders"]["amount_minor"] == 50_000
        account = (await client.get(f"/api/v1/dealer-accounts/{dealer.id}")).json()
        assert account["open_orders"]["amount_minor"] == 125_000
        # A dealer may not set its own limit or approve.
        assert (await client.put(f"/api/v1/dealer-accounts/{dealer.id}/credit-limit", json={
            "credit_limit": {"amount_minor": 9_999_999}})).status_code == 403
        assert (await client.post(f"/api/v1/orders/{second['id']}/approve",
                                  json={"stage": "channel_manager"})).status_code == 403
    async with suite.client(staff.manager_token) as manager:
        no_reason = await manager.post(f"/api/v1/orders/{second['id']}/reject",
                                       json={"stage": "channel_manager", "reason": ""})
        assert no_reason.status_code == 422
        rejected = await manager.post(f"/api/v1/orders/{second['id']}/reject",
                                      json={"stage": "channel_manager", "reason": "超出授信"})
        assert rejected.status_code == 200
    erp = Erp(suite, staff.erp_token)
    try:
        async with suite.client(dealer.token) as client:
            seen = (await client.get(f"/api/v1/orders/{second['id']}")).json()
            assert seen["status"] == "rejected" and seen["decision_reason"] == "超出授信"
            assert (await client.post(f"/api/v1/orders/{second['id']}/cancel",
                                      json={})).status_code == 409
            third = (await client.post("/api/v1/orders", json={
                "lines": [{"product_code": "A-001", "quantity": 1}]})).json()
            cancelled = await client.post(f"/api/v1/orders/{third['id']}/cancel",
                                          json={"reason": "下错单"})
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            await erp.ship([shipment("S-C", dealer.id, [
                {"order_id": first["id"], "order_line_no": 1, "product_code": "A-001",
                 "quantity": 1}])])
            shipped = await client.post(f"/api/v1/orders/{first['id']}/cancel", json={})
            assert shipped.status_code == 409
    finally:
        await erp.close()


async def test_erp_ingest_rejects_line_by_line(suite):
    world = await build_world(suite, dealers=2)
    staff = await add_staff(suite, world)
    mine, other = world.dealers
    order = await approved_order(suite, world, staff, [
        {"product_code": "A-001", "quantity": 5}, {"product_code": "A-002", "quantity": 3}],
        "PO-INGEST")
    oid = order["id"]
    erp = Erp(suite, staff.erp_token)
    try:
        good = shipment("S-GOOD", mine.id, [
            {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 3}])
        bad = shipment("S-BAD", mine.id, [
            {"order_id": oid, "order_line_no": 2, "product_code": "A-002", "quantity": 1},
            {"order_id": oid, "order_line_no": 2, "product_code": "A-002", "quantity": 9},
            {"order_id": "no-such-order", "order_line_no": 1, "product_code": "A-001",
             "quantity": 1},
            {"order_id": oid, "order_line_no": 1, "product_code": "ZZZ", "quantity": 1},
            {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 0}])
        foreign = shipment("S-FOREIGN", other.id, [
            {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 1}])
        reply = await erp.ship([good, bad, foreign])
        outcomes = {(r.record_id, r.line_no): (order_pb2.IngestOutcome.Name(r.outcome),
                                               r.reason_code) for r in reply.results}
        assert outcomes == {
            ("S-GOOD", 1): ("INGEST_OUTCOME_NOT_APPLIED", ""),
            ("S-BAD", 1): ("INGEST_OUTCOME_NOT_APPLIED", ""),
            ("S-BAD", 2): ("INGEST_OUTCOME_REJECTED", "OVER_SHIPPED"),
            ("S-BAD", 3): ("INGEST_OUTCOME_REJECTED", "UNKNOWN_ORDER"),
            ("S-BAD", 4): ("INGEST_OUTCOME_REJECTED", "UNKNOWN_PRODUCT"),
            ("S-BAD", 5): ("INGEST_OUTCOME_REJECTED", "INVALID_QUANTITY"),
            ("S-FOREIGN", 1): ("INGEST_OUTCOME_REJECTED", "DEALER_MISMATCH"),
        }
        async with suite.client(mine.token) as client:
            assert (await client.get("/api/v1/shipments")).json()["shipments"] == []
            # KEEP_VALID: whole good shipments are stored, shipments with a bad line not.
            reply = await erp.ship([good, bad, foreign], mode=order_pb2.INGEST_MODE_KEEP_VALID)
            assert reply.summary.accepted == 1 and reply.summary.rejected == 5
            assert reply.summary.not_applied == 1
            listed = (await client.get("/api/v1/shipments")).json()["shipments"]
            assert [s["shipment_id"] for s in listed] == ["S-GOOD"]
            order = (await client.get(f"/api/v1/orders/{oid}")).json()
            assert [line["quantity_shipped"] for line in order["lines"]] == [3, 0]
            # The same line again changes nothing; the same id with new content is refused.
            again = await erp.ship([good])
            assert again.summary.duplicate == 1 and again.summary.accepted == 0
            changed = shipment("S-GOOD", mine.id, [
                {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 2}])
            conflict = await erp.ship([changed])
            assert conflict.results[0].reason_code == "CONFLICTING_REPUSH"
            order = (await client.get(f"/api/v1/orders/{oid}")).json()
            assert order["lines"][0]["quantity_shipped"] == 3
            # Shipping more than remains, even split over two lines of one call.
            split = shipment("S-SPLIT", mine.id, [
                {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 1},
                {"order_id": oid, "order_line_no": 1, "product_code": "A-001", "quantity": 2}])
            reply = await erp.ship([split])
            assert [r.reason_code for r in reply.results] == ["", "OVER_SHIPPED"]
        # Only the ERP's credential may push.
        dealer_erp = Erp(suite, mine.token)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await dealer_erp.ship([good])
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        finally:
            await dealer_erp.close()
    finally:
        await erp.close()


async def test_payment_pushed_twice_counts_once(suite, world):
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    erp = Erp(suite, staff.erp_token)
    try:
        invoice = order_pb2.Invoice(invoice_id="INV-P", dealer_id=dealer.id,
                                    issued_on="2026-10-01", amount=cny(300_000))
        assert (await erp.invoice([invoice])).summary.accepted == 1
        payment = order_pb2.Payment(
            payment_id="PAY-TWICE", dealer_id=dealer.id, received_on="2026-10-20",
            amount=cny(120_000), method="bank_transfer",
            allocations=[order_pb2.PaymentAllocation(invoice_id="INV-P", amount=cny(120_000))])
        first = await erp.pay([payment])
        second = await erp.pay([payment])
        assert first.summary.accepted == 1
        assert second.summary.duplicate == 1 and second.summary.accepted == 0
        altered = order_pb2.Payment()
        altered.CopyFrom(payment)
        altered.amount.amount_minor = 130_000
        conflict = await erp.pay([altered])
        assert conflict.results[0].reason_code == "CONFLICTING_REPUSH"
        bad = await erp.pay([order_pb2.Payment(payment_id="PAY-NEG", dealer_id=dealer.id,
                                               received_on="2026-10-21", amount=cny(-5))])
        assert bad.results[0].reason_code == "INVALID_QUANTITY"
        async with suite.client(dealer.token) as client:
            account = (await client.get(f"/api/v1/dealer-accounts/{dealer.id}")).json()
            assert account["outstanding"]["amount_minor"] == 180_000
            # Net 30 from 2026-10-01: the unpaid rest is overdue.
            assert account["overdue"]["amount_minor"] == 180_000
    finally:
        await erp.close()


async def test_statement_with_late_shipments(suite, world):
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    order = await approved_order(suite, world, staff,
                                 [{"product_code": "A-001", "quantity": 10}], "PO-LATE")
    erp = Erp(suite, staff.erp_token)
    try:
        await erp.ship([shipment("S-OCT", dealer.id, [
            {"order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
             "quantity": 4}], ship_date="2026-10-10")])
        await erp.invoice([order_pb2.Invoice(invoice_id="INV-OCT", dealer_id=dealer.id,
                                             issued_on="2026-10-10", amount=cny(50_000))])
        async with suite.client(staff.finance_token) as finance:
            issued = (await finance.post("/api/v1/statements", json={
                "dealer_id": dealer.id, "period_start": "2026-10-01",
                "period_end": "2026-10-31"})).json()
            assert issued["closing_balance"]["amount_minor"] == 50_000
            # The ERP pushes October business after the statement was issued.
            await erp.ship([shipment("S-LATE", dealer.id, [
                {"order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
                 "quantity": 2}], ship_date="2026-10-28", waybill="SF-LATE")])
            await erp.invoice([order_pb2.Invoice(invoice_id="INV-LATE", dealer_id=dealer.id,
                                                 issued_on="2026-10-28", amount=cny(25_000))])
            # The issued statement is a snapshot: unchanged.
            again = (await finance.get(f"/api/v1/statements/{issued['id']}")).json()
            assert again["closing_balance"]["amount_minor"] == 50_000
            assert "S-LATE" not in {line["ref_id"] for line in again["lines"]}
            # November opens with the late invoice: balances come from the ledger.
            november = (await finance.post("/api/v1/statements", json={
                "dealer_id": dealer.id, "period_start": "2026-11-01",
                "period_end": "2026-11-30"})).json()
            assert november["opening_balance"]["amount_minor"] == 75_000
            # Re-issuing October supersedes the snapshot and shows the late records.
            reissued = (await finance.post("/api/v1/statements", json={
                "dealer_id": dealer.id, "period_start": "2026-10-01",
                "period_end": "2026-10-31"})).json()
            assert reissued["supersedes_statement_id"] == issued["id"]
            assert reissued["closing_balance"]["amount_minor"] == 75_000
            assert {"S-LATE", "INV-LATE"} <= {line["ref_id"] for line in reissued["lines"]}
            old = (await finance.get(f"/api/v1/statements/{issued['id']}")).json()
            assert old["status"] == "superseded"
        async with suite.client(dealer.token) as client:
            stale = await client.post(f"/api/v1/statements/{issued['id']}/confirm", json={})
            assert stale.status_code == 409
            invoice_line = next(line for line in reissued["lines"]
                                if line["ref_id"] == "INV-LATE")
            disputed = await client.post(
                f"/api/v1/statements/{reissued['id']}/lines/{invoice_line['line_no']}/dispute",
                json={"reason": "未收到发票", "disputed_amount": {"amount_minor": 0}})
            assert disputed.status_code == 200, disputed.text
            body = disputed.json()
            assert body["status"] == "disputed"
            line = next(x for x in body["lines"] if x["ref_id"] == "INV-LATE")
            assert line["disputed"] and line["dispute_reason"] == "未收到发票"
    finally:
        await erp.close()


async def test_stream_cut_off_keeps_committed_messages(suite, world):
    """Each stream message commits on its own: a stream broken after the first message
    keeps that message and none of the rest; re-sending the whole stream is safe."""
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    order = await approved_order(suite, world, staff,
                                 [{"product_code": "A-001", "quantity": 10}], "PO-CUT")
    messages = [order_pb2.StreamShipmentsRequest(shipments=[shipment(
        f"S-CUT-{n}", dealer.id, [{"order_id": order["id"], "order_line_no": 1,
                                   "product_code": "A-001", "quantity": 2}],
        waybill=f"W{n}")]) for n in range(3)]
    erp = Erp(suite, staff.erp_token)
    release = asyncio.Event()

    async def cut_after_first():
        yield messages[0]
        await release.wait()  # never set: the connection breaks here
        yield messages[1]

    try:
        call = erp.stub.StreamShipments(cut_after_first(), metadata=erp.metadata)

        async def first_committed():
            try:
                await erp.stub.GetShipment(order_pb2.GetShipmentRequest(shipment_id="S-CUT-0"),
                                           metadata=erp.metadata)
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(first_committed)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        async with suite.client(dealer.token) as client:
            listed = (await client.get("/api/v1/shipments")).json()["shipments"]
            assert [s["shipment_id"] for s in listed] == ["S-CUT-0"]
            assert (await client.get(f"/api/v1/orders/{order['id']}")).json()[
                "lines"][0]["quantity_shipped"] == 2
        # The ERP re-sends everything: the first message is a duplicate, the rest lands.
        reply = await erp.stream(messages)
        assert (reply.summary.duplicate, reply.summary.accepted) == (1, 2)
        assert reply.messages_committed == 3
    finally:
        await erp.close()


async def test_rebate_credit_is_booked_once(suite, world):
    dealer = world.dealers[0]
    credit = incentive_events.RebateCredited(
        credit_id="RC-2026Q3-1", dealer_id=dealer.id, amount=cny(8_800),
        description="2026 Q3 A系列返利", period_start="2026-07-01", period_end="2026-09-30")
    nc = await nats.connect(suite.nats.url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream_config("incentive"))
        for _ in range(2):  # redelivered under another event id: credit_id dedupes
            envelope = build_envelope("incentive", credit, dealer.id)
            await js.publish("qudao.incentive.rebate.credited", envelope.SerializeToString(),
                             headers={"Nats-Msg-Id": envelope.event_id})
    finally:
        await nc.close()
    async with suite.client(dealer.token) as client:
        async def booked():
            account = (await client.get(f"/api/v1/dealer-accounts/{dealer.id}")).json()
            return account["outstanding"]["amount_minor"] == -8_800
        await eventually(booked)
    async with suite.client(world.admin_token) as admin:
        statement = (await admin.post("/api/v1/statements", json={
            "dealer_id": dealer.id, "period_start": "2026-01-01",
            "period_end": "2030-12-31"})).json()
        rebate = [line for line in statement["lines"] if line["kind"] == "rebate_credit"]
        assert len(rebate) == 1 and rebate[0]["credit"]["amount_minor"] == 8_800
        assert "A系列返利" in rebate[0]["description"]


async def test_erp_push_cli(suite, world, tmp_path):
    staff = await add_staff(suite, world)
    dealer = world.dealers[0]
    order = await approved_order(suite, world, staff,
                                 [{"product_code": "A-002", "quantity": 3}], "PO-CLI")
    document = {
        "mode": "keep_valid",
        "shipments": [
            {"shipment_id": "S-CLI-1", "dealer_id": dealer.id, "ship_date": "2026-11-03",
             "lines": [{"line_no": 1, "order_id": order["id"], "order_line_no": 1,
                        "product_code": "A-002", "batch": "L7", "expiry_date": "2029-01-31",
                        "quantity": 3}]},
            {"shipment_id": "S-CLI-2", "dealer_id": dealer.id, "ship_date": "2026-11-03",
             "lines": [{"line_no": 1, "order_id": order["id"], "order_line_no": 1,
                        "product_code": "A-002", "batch": "L7", "quantity": 1}]}],
        "payments": [{"payment_id": "P-CLI", "dealer_id": dealer.id,
                      "received_on": "2026-11-04",
                      "amount": {"amount_minor": 1000, "currency": "CNY"}}],
    }
    path = tmp_path / "erp.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUDAO_")}
    env.update(QUDAO_ERP_USERNAME="erp.user", QUDAO_ERP_PASSWORD="Hq-Staff-Passw0rd!")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "suite.cli", "erp", "push", str(path),
        "--addr", f"127.0.0.1:{suite.ports['order']}",
        "--identity-addr", f"127.0.0.1:{suite.ports['identity']}", "--batch", "1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 2, err.decode()
    report = json.loads(out)
    assert report["shipments"]["accepted"] == 1
    assert report["shipments"]["messages_committed"] == 2
    assert report["payments"]["accepted"] == 1
    assert [(p["record_id"], p["reason_code"]) for p in report["problems"]] == [
        ("S-CLI-2", "OVER_SHIPPED")]
