"""HQ's incentive configuration through the gateway, with the real services: commission
rules and rebate programs (bad ones refused naming the field, only HQ admin writes, the
JSON the API returns can be sent back), versions, targets set by hand and imported from
CSV and XLSX (a dry run, row errors, all or nothing), achievement and reports; and
statements exported as XLSX whose cells are never formulas, whatever the names hold."""

from __future__ import annotations

import io

import grpc
import pytest
from openpyxl import Workbook
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from shared.events.flow import FLOW_UPLOAD_ACCEPTED
from tests.harness import eventually
from tests.incentive.support import FlowPublisher, accepted, cells, flow_row, formulas
from tests.order.support import add_staff

pytestmark = pytest.mark.asyncio(loop_scope="module")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _fields(response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


async def test_rules_and_programs_are_hq_admins_and_checked(shared_suite, shared_world):
    suite, world = shared_suite, shared_world
    staff = await add_staff(suite, world, prefix="cfg.")
    rule = {"name": "订单佣金", "base": "approved_orders", "base_rate_bps": 80,
            "valid_from": "2026-01-01"}
    for token in (world.dealers[0].token, staff.finance_token, staff.manager_token):
        async with suite.client(token) as client:
            response = await client.post("/api/v1/commission-rules", json={"rule": rule})
            assert response.status_code == 403, response.text
    async with suite.client(world.admin_token) as admin:
        bad = await admin.post("/api/v1/commission-rules", json={"rule": {
            **rule, "name": " ", "base_rate_bps": -5,
            "rates": [{"source": "hq_lead", "rate_bps": 20_000}]}})
        assert bad.status_code == 400, bad.text
        assert _fields(bad) == {"rule.name", "rule.base_rate_bps", "rule.rates[hq_lead].rate_bps"}
        unknown = await admin.post("/api/v1/commission-rules", json={"rule": {
            **rule, "base": "whatever"}})
        assert unknown.status_code == 400 and _fields(unknown) == {"body"}
        created = await admin.post("/api/v1/commission-rules", json={"rule": rule})
        assert created.status_code == 201, created.text
        stored = created.json()["rule"]
        assert (stored["base"], stored["unregistered"], created.json()["created"]) == (
            "approved_orders", "base_rate", True)
        # What the API returns goes back as it is: a changed rate, the same rule.
        changed = await admin.post("/api/v1/commission-rules", json={"rule": {
            **stored, "base_rate_bps": 90}})
        assert changed.status_code == 201, changed.text
        assert (changed.json()["created"], changed.json()["rule"]["base_rate_bps"]) == (False, 90)
        overlap = await admin.post("/api/v1/commission-rules", json={"rule": {
            **rule, "name": "again"}})
        assert overlap.status_code == 400 and _fields(overlap) == {"rule.valid_from"}
        listed = await admin.get("/api/v1/commission-rules", params={"active_on": "2026-06-01"})
        assert [r["id"] for r in listed.json()["rules"]] == [stored["id"]]

        program = {"name": "Q4 华东", "product_lines": ["A系列"], "period": "quarter",
                   "period_start": "2026-10-01", "period_end": "2026-12-31",
                   "mode": "marginal", "basis": "amount", "currency": "CNY",
                   "audience": {"term": {"region_code": "east"}},
                   "tiers": [{"min_amount": {"amount_minor": 0}, "rate_bps": 100},
                             {"min_amount": {"amount_minor": 1_000_000}, "rate_bps": 200}],
                   "cap": {"amount_minor": 500_000}}
        for wrong, field in (
                ({"tiers": [{"min_amount": {"amount_minor": 500}, "rate_bps": 100},
                            {"min_amount": {"amount_minor": 100}, "rate_bps": 200}]},
                 "program.tiers[1]"),
                ({"tiers": [{"min_amount": {"amount_minor": 0}, "rate_bps": -1}]},
                 "program.tiers[0].rate_bps"),
                ({"audience": {"term": {"tag": "没有这个标签"}}}, "program.audience"),
                ({"period_end": "2026-12-15"}, "program.period_end")):
            response = await admin.post("/api/v1/rebate-programs",
                                        json={"program": {**program, **wrong}})
            assert response.status_code == 400, response.text
            assert field in _fields(response), (wrong, response.text)
        response = await admin.post("/api/v1/rebate-programs", json={"program": program})
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["dealer_count"] == 2 and created["program"]["version"] == 1
        program_id = created["program"]["id"]
        # A new version from November on, sent back as the API wrote the program.
        version = await admin.post(f"/api/v1/rebate-programs/{program_id}/versions", json={
            "program": {**created["program"], "cap": None}, "effective_from": "2026-11-01"})
        assert version.status_code == 400 and _fields(version) == {"effective_from"}
        year = await admin.post("/api/v1/rebate-programs", json={"program": {
            **program, "name": "2026 月度", "period": "month", "period_start": "2026-01-01",
            "period_end": "2026-12-31"}})
        assert year.status_code == 201, year.text
        year_id = year.json()["program"]["id"]
        version = await admin.post(f"/api/v1/rebate-programs/{year_id}/versions", json={
            "program": {**year.json()["program"], "cap": None}, "effective_from": "2026-12-01"})
        assert version.status_code == 201, version.text
        shown = (await admin.get(f"/api/v1/rebate-programs/{year_id}")).json()
        assert (shown["version"], shown["effective_from"], shown["cap"]) == (2, "2026-12-01",
                                                                             None)
        assert [p["version"] for p in shown["previous_versions"]] == [1]
    async with suite.client(world.dealers[0].token) as dealer:
        response = await dealer.post("/api/v1/rebate-programs", json={"program": program})
        assert response.status_code == 403
        listed = (await dealer.get("/api/v1/rebate-programs")).json()["programs"]
        assert {program_id, year_id} <= {p["id"] for p in listed}


async def test_targets_are_set_and_imported_then_achievement_shows(shared_suite, shared_world):
    suite, world = shared_suite, shared_world
    d1, d2 = world.dealers
    async with suite.client(world.admin_token) as admin:
        response = await admin.put("/api/v1/targets", json={"targets": [
            {"dealer_id": d1.id, "product_line": "A系列", "period": "2026-Q4",
             "measure": "sell_through_quantity", "value": 100}]})
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 1
        csv = ("经销商,产品线,期间,指标类型,指标值\n"
               f"{d1.id},A系列,2026-Q4,金额,\"12,500.00\"\n"
               f"{d2.id},A系列,2026-Q4,数量,80\n").encode("gbk")
        checked = await admin.post("/api/v1/targets/import", content=csv,
                                   params={"dry_run": "true"},
                                   headers={"content-type": "text/csv"})
        assert checked.status_code == 200, checked.text
        assert (checked.json()["rows"], checked.json()["created"], checked.json()["errors"]) == (
            2, 0, [])
        assert len((await admin.get("/api/v1/targets")).json()["targets"]) == 1
        done = await admin.post("/api/v1/targets/import", content=csv,
                                headers={"content-type": "text/csv"})
        assert (done.json()["created"], done.json()["updated"]) == (2, 0)
        book = Workbook()
        book.active.append(["dealer", "product_line", "period", "measure", "value"])
        book.active.append([d2.id, "A系列", "2026-Q4", "quantity", 90])
        book.active.append(["91310000MA1K00000X", "A系列", "2026-Q4", "quantity", 5])
        book.active.append([d1.id, "A系列", "2026-Q9", "quantity", 5])
        buffer = io.BytesIO()
        book.save(buffer)
        failed = await admin.post("/api/v1/targets/import",
                                  files={"file": ("指标.xlsx", buffer.getvalue(), XLSX)})
        assert failed.status_code == 200, failed.text
        assert sorted((e["row_number"], e["column"], e["code"])
                      for e in failed.json()["errors"]) == [
            (3, "dealer", "UNKNOWN_DEALER"), (4, "period", "INVALID_PERIOD")]
        # All or nothing: d2's good row 2 was not stored either.
        quantity = {t["dealer_id"]: t["value"] for t in (await admin.get(
            "/api/v1/targets", params={"period": "2026-Q4"})).json()["targets"]
            if t["measure"] == "sell_through_quantity"}
        assert quantity == {d1.id: 100, d2.id: 80}
    async with suite.client(d2.token) as dealer:
        mine = (await dealer.get("/api/v1/targets")).json()["targets"]
        assert {t["dealer_id"] for t in mine} == {d2.id}
        response = await dealer.get(f"/api/v1/dealers/{d2.id}/achievement",
                                    params={"period": "2026-Q4"})
        assert response.status_code == 200, response.text
        [reached] = response.json()["achievements"]
        assert (reached["actual"], reached["share_bps"], reached["remaining"]) == (0, 0, 80)
        other = await dealer.get(f"/api/v1/dealers/{d1.id}/achievement",
                                 params={"period": "2026-Q4"})
        assert other.status_code == 404
        refused = await dealer.put("/api/v1/targets", json={"targets": []})
        assert refused.status_code == 403


async def test_statements_export_as_xlsx_whose_cells_are_never_formulas(shared_suite,
                                                                         shared_world):
    suite, world = shared_suite, shared_world
    staff = await add_staff(suite, world, prefix="xlsx.")
    d1 = world.dealers[0]
    hostile = '=HYPERLINK("http://evil.example","点我")'
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/commission-rules", json={"rule": {
            "name": "@SUM(1+1)*cmd|' /C calc'!A0", "product_line": "A系列",
            "base_rate_bps": 150, "valid_from": "2026-01-01"}})
        assert response.status_code == 201, response.text
        response = await admin.post("/api/v1/rebate-programs", json={"program": {
            "name": hostile, "product_lines": ["A系列"], "period": "month",
            "period_start": "2026-09-01", "period_end": "2026-09-30",
            "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
            "tiers": [{"min_quantity": 1, "fixed_amount": {"amount_minor": 88_800}}]}})
        assert response.status_code == 201, response.text
    async with FlowPublisher(suite) as flow:
        await flow.publish(FLOW_UPLOAD_ACCEPTED, accepted("SEP-1", d1.id, [
            flow_row(2, d1.id, "h1", 4, 40_000, "2026-09-15", product=world.products[0])],
            period=("2026-09-01", "2026-09-30")), "SEP-1")

    async def accrued():
        async with suite.client(d1.token) as client:
            found = (await client.get("/api/v1/accruals",
                                      params={"period": "2026-09"})).json()["accruals"]
            return {a["kind"] for a in found} == {"commission", "rebate"}

    await eventually(accrued, timeout=20)
    # Over gRPC a close cannot name programs: it settles everything due (nothing done).
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports['incentive']}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as partial:
            await incentive_pb2_grpc.IncentiveServiceStub(channel).CloseSettlementPeriod(
                incentive_pb2.CloseSettlementPeriodRequest(period="2026-09",
                                                           program_ids=["one"]),
                metadata=(("authorization", f"Bearer {staff.finance_token}"),))
        assert partial.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with suite.client(staff.finance_token) as finance:
        response = await finance.post("/api/v1/settlement-periods", json={"period": "2026-09"})
        assert response.status_code == 201, response.text
        period_id = response.json()["id"]
    async with suite.client(d1.token) as client:
        [statement] = (await client.get("/api/v1/settlements", params={
            "settlement_period_id": period_id})).json()["settlements"]
        # (Programs of the other tests in this suite may pay on September too.)
        amounts = {line["program_name"]: line["amount"]["amount_minor"]
                   for line in statement["lines"]}
        assert (amounts[hostile], amounts["@SUM(1+1)*cmd|' /C calc'!A0"]) == (88_800, 600)
        assert statement["total"]["amount_minor"] == sum(amounts.values())
        exported = await client.get(f"/api/v1/settlements/{statement['id']}/export")
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"] == XLSX
        assert "attachment" in exported.headers["content-disposition"]
    assert formulas(exported.content) == []
    values = [value for _, value, _ in cells(exported.content)]
    assert "'" + hostile in values and "'@SUM(1+1)*cmd|' /C calc'!A0" in values
    assert 888 in [v for v in values if isinstance(v, int | float)]  # the fixed amount, yuan
