"""Bulk dealer import from CSV (UTF-8 or GBK, English or Chinese headers) and XLSX:
all or nothing, with a row-level error report in Chinese and English."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from tests.conftest import require_postgres
from tests.harness import Suite
from tests.identity.helpers import Admin
from tests.world import STAFF_PASSWORD, credit_code

HEADER = "名称,统一社会信用代码,等级,区域,行政区划,产品线,平台商信用代码,共享给平台商,标签\n"


def csv_rows(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


async def post_file(admin: Admin, content: bytes, filename: str, **params):
    content_type = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    if filename.endswith(".xlsx") else "text/csv")
    return await admin.http.post("/api/v1/dealers/import", content=content,
                                 params={"filename": filename, **params},
                                 headers={"content-type": content_type})


async def dealer_count(admin: Admin) -> int:
    return (await admin.ok("GET", "/api/v1/org-units",
                           params={"kind": "dealer"}))["page"]["total_size"]


async def run_import(suite: Suite) -> None:
    admin = await Admin.login(suite)
    try:
        await admin.region("east", "华东")
        await admin.region("south", "华南")
        good = csv_rows(
            f"上海平台商,{credit_code(1)},平台商,east,310000,A系列;B系列,,,",
            f"苏州分销商,{credit_code(2)},二级,east,320500,A系列,{credit_code(1)},是,重点",
            f"深圳经销商,{credit_code(3)},一级,south,440300|440305,A系列,,,")
        dry = await post_file(admin, good.encode("gbk"), "dealers.csv", dry_run="true")
        assert dry.status_code == 200 and dry.json()["accepted"] is True
        assert dry.json()["created"] == 3 and await dealer_count(admin) == 0

        response = await post_file(admin, good.encode("gbk"), "dealers.csv")
        body = response.json()
        assert response.status_code == 200, response.text
        assert (body["accepted"], body["created"], body["updated"]) == (True, 3, 0)
        listed = (await admin.ok("GET", "/api/v1/org-units", params={"kind": "dealer"}))[
            "org_units"]
        by_name = {d["name"]: d for d in listed}
        sub = by_name["苏州分销商"]
        assert sub["platform_dealer_id"] == by_name["上海平台商"]["id"]
        assert sub["shared_with_platform"] is True and sub["custom_tags"] == ["重点"]
        assert sub["derived_tags"] == ["华东-苏州-二级-A系列"]
        assert by_name["深圳经销商"]["division_codes"] == ["440300", "440305"]

        # Bad rows are reported by row number and column (every rule: tests/service);
        # nothing is written, not even the good rows.
        bad = csv_rows(
            f"深圳经销商,{credit_code(3)},一级,south,440300,A系列,,,",   # update: fine
            "",  # a blank line still counts, as in the user's editor
            f"未知区域,{credit_code(11)},一级,north,310000,A系列,,,",
            f"坏上级,{credit_code(12)},二级,east,310000,A系列,{credit_code(3)},,")
        response = await post_file(admin, bad.encode("utf-8-sig"), "dealers.csv")
        body = response.json()
        assert response.status_code == 200 and body["accepted"] is False
        errors = {(e["row_number"], e["column"], e["code"]) for e in body["errors"]}
        assert errors == {(4, "region_code", "UNKNOWN_REGION"),
                          (5, "platform_credit_code", "INVALID_PLATFORM")}
        assert all(e["message_zh"] and e["message_en"] for e in body["errors"])
        assert await dealer_count(admin) == 3
        unchanged = await admin.ok("GET", f"/api/v1/org-units/{by_name['深圳经销商']['id']}")
        assert unchanged["division_codes"] == ["440300", "440305"]

        # XLSX, updating one dealer and leaving another unchanged.
        book = Workbook()
        sheet = book.active
        sheet.append(["name", "credit_code", "tier", "region_code", "division_codes",
                      "product_lines"])
        sheet.append(["深圳经销商（更名）", credit_code(3), "one", "south", "440300", "A系列"])
        sheet.append(["上海平台商", credit_code(1), "platform", "east", "310000", "A系列;B系列"])
        sheet.append(["杭州经销商", credit_code(4), "two", "east", "330100", "C系列"])
        buffer = io.BytesIO()
        book.save(buffer)
        response = await post_file(admin, buffer.getvalue(), "dealers.xlsx")
        body = response.json()
        assert (body["accepted"], body["created"], body["updated"], body["unchanged"]) == (
            True, 1, 1, 1), body
        renamed = await admin.ok("GET", f"/api/v1/org-units/{by_name['深圳经销商']['id']}")
        assert renamed["name"] == "深圳经销商（更名）"
        assert renamed["division_codes"] == ["440300"]

        empty = await post_file(admin, b"", "x.csv")
        assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "content"

        hq = await admin.hq_id()
        await admin.user("fin.importer", ["finance"], hq)
        async with suite.client(await suite.login("fin.importer", STAFF_PASSWORD)) as fin:
            refused = await fin.post("/api/v1/dealers/import", content=good.encode(),
                                     headers={"content-type": "text/csv"})
            assert refused.status_code == 403
    finally:
        await admin.aclose()


async def test_import_dealers(suite):
    await run_import(suite)


@pytest.mark.postgres
async def test_import_dealers_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await run_import(suite)
    finally:
        await suite.stop()
