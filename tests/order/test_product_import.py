"""HQ imports its product file through the gateway: XLSX from a browser form with Chinese
headers, CSV in GBK as the raw body; bad rows are reported by row and column and nothing
is written; re-imports change nothing; dealers may not import."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from tests.world import gtin

pytestmark = pytest.mark.asyncio(loop_scope="module")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_browser_upload_of_an_xlsx_creates_products_and_a_reimport_changes_nothing(
        shared_suite, shared_world):
    content = workbook([
        ["产品编码", "产品名称", "规格型号", "产品标识", "产品线", "单位", "目录价", "序列号管理"],
        ["IMP-001", "一次性使用留置针", "22G", gtin(101), "B系列", "支", "¥1,280.50", "否"],
        ["IMP-002", "输液泵", "VP-30", gtin(102), "B系列", "台", 35000, "是"],
    ])
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.post("/api/v1/products/import",
                                    files={"file": ("产品目录.xlsx", content, XLSX)})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accepted"], body["created"], body["errors"]) == (True, 2, [])
        pump = (await admin.get("/api/v1/products/IMP-002")).json()
        assert (pump["name"], pump["serial_tracked"], pump["list_price"]["amount_minor"]) == (
            "输液泵", True, 3_500_000)
        needle = (await admin.get("/api/v1/products/IMP-001")).json()
        assert needle["list_price"]["amount_minor"] == 128_050
        assert needle["gtin"] == gtin(101)

        again = await admin.post("/api/v1/products/import",
                                 files={"file": ("产品目录.xlsx", content, XLSX)})
        assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)


async def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_written(
        shared_suite, shared_world):
    taken = shared_world.products[0]["gtin"]  # already product A-001's
    rows = [
        "产品编码,产品名称,产品标识,产品线,目录价",
        f"BAD-001,好产品,{gtin(201)},B系列,10",
        f"BAD-002,校验位错,{gtin(202)[:-1]}0,B系列,10",
        f"BAD-003,负价格,{gtin(203)},B系列,-5",
        f"BAD-001,编码重复,{gtin(204)},B系列,10",
        "",
        f"BAD-005,标识已被占用,{taken},B系列,10",
        f"BAD-006,,{gtin(206)},,1.005",
    ]
    content = "\n".join(rows).encode("gbk")
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.post("/api/v1/products/import", content=content,
                                    params={"encoding": "gbk"},
                                    headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] is False
        reported = {(e["row_number"], e["column"], e["code"]) for e in body["errors"]}
        assert reported == {
            (3, "产品标识", "INVALID_GTIN"),
            (4, "目录价", "INVALID_PRICE"),
            (5, "产品编码", "DUPLICATE_ROW"),
            (7, "gtin", "GTIN_TAKEN"),
            (8, "产品名称", "INVALID_NAME"),
            (8, "产品线", "INVALID_PRODUCT_LINE"),
            (8, "目录价", "INVALID_PRICE"),
        }
        assert (await admin.get("/api/v1/products/BAD-001")).status_code == 404

        missing = await admin.post("/api/v1/products/import", content=b"code,name\nX,Y\n",
                                   headers={"content-type": "text/csv"})
        assert [e["code"] for e in missing.json()["errors"]] == ["MISSING_COLUMN"]


async def test_dealers_may_not_import_and_oversized_files_are_refused(
        shared_suite, shared_world):
    content = f"code,name,gtin,product_line\nD-1,x,{gtin(301)},A系列\n".encode()
    async with shared_suite.client(shared_world.dealers[0].token) as dealer:
        response = await dealer.post("/api/v1/products/import", content=content,
                                     headers={"content-type": "text/csv"})
        assert response.status_code == 403, response.text
    async with shared_suite.client(shared_world.admin_token) as admin:
        response = await admin.post("/api/v1/products/import", content=b"x" * (11 << 20),
                                    headers={"content-type": "text/csv"})
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        form = await admin.post("/api/v1/products/import", files={"other": ("a.csv", b"x")})
        assert form.status_code == 400 and form.json()["errors"][0]["field"] == "file"
