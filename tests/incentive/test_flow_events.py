"""Flow's events, published on a real NATS exactly as flow publishes them, through the
real incentive service and the gateway: an upload accepted in parts (out of order, one
part twice, once under a new event id) is counted once; a replaced upload is reversed; a
diversion flow found (in a rejected upload) takes the diverted goods out; the dealer's
what-if follows; finance closes the month, another person approves it, the statement
exports without formulas, and order credits the dealer's account."""

from __future__ import annotations

from datetime import UTC, datetime

from qudao.flow.v1 import events_pb2 as flow_events
from qudao.flow.v1 import flow_pb2

from shared.events.flow import DIVERSION_DETECTED, FLOW_UPLOAD_ACCEPTED, FLOW_UPLOAD_SUPERSEDED
from tests.harness import eventually
from tests.incentive.support import FlowPublisher, accepted, cells, flow_row, formulas
from tests.order.support import add_staff

OCTOBER = ("2026-10-01", "2026-10-31")


async def _accruals(suite, token: str, **params) -> list[dict]:
    async with suite.client(token) as client:
        response = await client.get("/api/v1/accruals", params={"page_size": 500, **params})
        assert response.status_code == 200, response.text
        return response.json()["accruals"]


def _net(accruals: list[dict], kind: str) -> int:
    return sum(a["amount"]["amount_minor"] for a in accruals if a["kind"] == kind)


async def test_flow_events_accrue_once_and_settle_into_a_credit(suite, world):
    staff = await add_staff(suite, world)
    d1, d2 = world.dealers
    product = world.products[0]
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/commission-rules", json={"rule": {
            "name": "A系列佣金", "product_line": "A系列", "base_rate_bps": 100,
            "rates": [{"source": "dealer_sourced", "rate_bps": 300}],
            "valid_from": "2026-01-01"}})
        assert response.status_code == 201, response.text
        response = await admin.post("/api/v1/rebate-programs", json={"program": {
            "name": "十月 A系列 阶梯返利", "product_lines": ["A系列"],
            "period_start": OCTOBER[0], "period_end": OCTOBER[1], "period": "month",
            "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
            "tiers": [{"min_quantity": 10, "rate_bps": 100},
                      {"min_quantity": 30, "rate_bps": 300}]}})
        assert response.status_code == 201, response.text
        program = response.json()["program"]
        assert response.json()["dealer_count"] == 2

    async with FlowPublisher(suite) as flow:
        # U1 in two parts, the second first; the first twice (a redelivery past the
        # duplicate window), then once more under a new event id (the same unit).
        part_1 = accepted("U1", d1.id, [
            flow_row(7, d1.id, "h2", 5, 50_000, "2026-10-05", product=product),
            flow_row(8, d1.id, "", 3, 30_000, "2026-10-05", product=product,
                     transfer_to=d2.id)], part=1, parts=2, period=OCTOBER)
        part_0 = accepted("U1", d1.id, [
            flow_row(2, d1.id, "h1", 10, 100_000, "2026-10-05", product=product, row_count=4)],
            part=0, parts=2, period=OCTOBER)
        await flow.publish(FLOW_UPLOAD_ACCEPTED, part_1, "U1")
        first = await flow.publish(FLOW_UPLOAD_ACCEPTED, part_0, "U1")
        await flow.publish(FLOW_UPLOAD_ACCEPTED, part_0, "U1", event_id=first,
                           msg_id=f"{first}-again")
        await flow.publish(FLOW_UPLOAD_ACCEPTED, part_0, "U1")
        # d2's own upload comes after all of them: once it shows, they were applied.
        await flow.publish(FLOW_UPLOAD_ACCEPTED, accepted("U0", d2.id, [
            flow_row(2, d2.id, "h5", 1, 10_000, "2026-10-09", product=product)],
            period=OCTOBER), "U0")
        await eventually(lambda: _accruals(suite, d2.token, source_id="U0"), timeout=20)
        mine = await _accruals(suite, d1.token)
        # 150,000 sold to hospitals (the transfer is no sale): 1% commission, and tier 1
        # (15 units) of the program, 1%.
        assert (_net(mine, "commission"), _net(mine, "rebate")) == (1_500, 1_500)
        assert {a["source_id"] for a in mine if a["kind"] == "commission"} == {"U1#0", "U1#1"}
        assert {a["dealer_id"] for a in mine} == {d1.id}
        # Hospitals d1 neither registered nor was assigned earn the base rate.
        assert {a["customer_source"] for a in mine if a["kind"] == "commission"} == {
            "unregistered"}

        # U1 replaced by U2 (flow sends FlowUploadSuperseded first), then a diversion
        # flow found in another, rejected upload of d1: batch B-DIV never reached d1.
        await flow.publish(FLOW_UPLOAD_SUPERSEDED, flow_events.FlowUploadSuperseded(
            upload_id="U1", dealer_id=d1.id, superseded_by_upload_id="U2",
            period_start=OCTOBER[0], period_end=OCTOBER[1]), "U1")
        await flow.publish(FLOW_UPLOAD_ACCEPTED, accepted("U2", d1.id, [
            flow_row(2, d1.id, "h1", 35, 350_000, "2026-10-06", product=product),
            flow_row(3, d1.id, "h3", 5, 50_000, "2026-10-07", product=product,
                     batch="B-DIV")], period=OCTOBER, replaces="U1"), "U2")

        async def replaced():
            found = await _accruals(suite, d1.token)
            return (_net(found, "commission"), _net(found, "rebate")) == (4_000, 12_000)

        await eventually(replaced, timeout=20)
        diversion = flow_pb2.Diversion(
            id="DIV-1", upload_id="REJ-1", row_number=4, selling_dealer_id=d1.id,
            shipped_dealer_id=d2.id, product_code=product["code"], gtin=product["gtin"],
            batch="B-DIV", serials=[], quantity=5, customer_id="h3", customer_name="某医院",
            sold_on="2026-10-07", shipment_id="S-9", ship_date="2026-09-20",
            status=flow_pb2.DIVERSION_STATUS_OPEN)
        diversion.detected_at.FromDatetime(datetime(2026, 10, 8, 3, tzinfo=UTC))
        await flow.publish(DIVERSION_DETECTED, flow_events.DiversionDetected(
            diversion=diversion), "DIV-1")

        async def diverted():
            found = await _accruals(suite, d1.token)
            return (_net(found, "commission"), _net(found, "rebate")) == (3_500, 10_500)

        await eventually(diverted, timeout=20)

    # The dealer's what-if: 35 units at tier 2 (3%); nothing above it.
    async with suite.client(d1.token) as client:
        response = await client.get(f"/api/v1/rebate-programs/{program['id']}/what-if",
                                    params={"dealer_id": d1.id, "on": "2026-10-15",
                                            "additional_quantity": 5})
        assert response.status_code == 200, response.text
        what_if = response.json()
        assert (what_if["current"]["volume_quantity"], what_if["current"]["tier_number"],
                what_if["current"]["rebate"]["amount_minor"]) == (35, 2, 10_500)
        assert (what_if["projected"]["volume_quantity"],
                what_if["additional_rebate"]["amount_minor"],
                what_if["quantity_to_next_tier"]) == (40, 1_500, 0)
    async with suite.client(d2.token) as client:
        response = await client.get(f"/api/v1/rebate-programs/{program['id']}/what-if",
                                    params={"dealer_id": d1.id, "on": "2026-10-15"})
        assert response.status_code == 404, response.text

    # Finance closes October; someone else approves it.
    async with suite.client(staff.finance_token) as finance:
        response = await finance.post("/api/v1/settlement-periods", json={"period": "2026-10"})
        assert response.status_code == 201, response.text
        period = response.json()
        assert (period["status"], period["period"], period["dealer_count"]) == (
            "closed", "2026-10", 2)
        again = await finance.post("/api/v1/settlement-periods", json={"period": "2026-10"})
        assert again.status_code == 409 and again.json()["reason"] == "PERIOD_CLOSED"
        same = await finance.post(f"/api/v1/settlement-periods/{period['id']}/approve")
        assert same.status_code == 403 and same.json()["reason"] == "FOUR_EYES"
    async with suite.client(d1.token) as client:
        response = await client.get("/api/v1/settlements",
                                    params={"settlement_period_id": period["id"]})
        assert response.status_code == 200, response.text
        [statement] = response.json()["settlements"]
        lines = {line["kind"]: line for line in statement["lines"]}
        assert statement["total"]["amount_minor"] == 14_000
        assert (lines["commission"]["amount"]["amount_minor"], lines["commission"]["rate_bps"],
                lines["rebate"]["amount"]["amount_minor"], lines["rebate"]["tier_number"],
                lines["rebate"]["volume_quantity"]) == (3_500, 100, 10_500, 2, 35)
        assert lines["rebate"]["sources"] == ["flow_upload:U2#0"]
        assert "flow_upload:U2#0" in lines["commission"]["sources"]
        exported = await client.get(f"/api/v1/settlements/{statement['id']}/export")
        assert exported.status_code == 200, exported.text
        assert formulas(exported.content) == []
        values = [value for _, value, _ in cells(exported.content)]
        assert "十月 A系列 阶梯返利" in values and d1.id in values
    async with suite.client(world.admin_token) as admin:
        response = await admin.post(f"/api/v1/settlement-periods/{period['id']}/approve")
        assert response.status_code == 200, response.text
        assert response.json()["credited"] == 2
        assert response.json()["period"]["status"] == "settled"

    # order books each RebateCredited as a credit on the dealer's account.
    async def credited():
        async with suite.client(staff.finance_token) as finance:
            response = await finance.get(f"/api/v1/dealer-accounts/{d1.id}")
            return response.status_code == 200 and (
                response.json()["outstanding"]["amount_minor"] == -14_000)

    await eventually(credited, timeout=20)
