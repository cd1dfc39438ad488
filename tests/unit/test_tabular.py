"""The bounded import reader: encodings and line endings people's spreadsheets produce,
and a clear refusal, naming the limit and the row or column, for whatever exceeds a cap."""

from __future__ import annotations

import pytest

from shared.errors import InvalidArgument
from shared.tabular import Limits, read_table
from tests.hostile import corpus
from tests.order.test_product_import import workbook

ROWS = "名称,编码\r\n甲,1\r\n乙,2\r\n"


def cells(table):
    return [(number, row) for number, row in table.rows]


@pytest.mark.parametrize("content", [
    ROWS.encode("utf-8"), ROWS.encode("utf-8-sig"), ROWS.encode("gbk"),
    ROWS.encode("utf-16"),                       # "Unicode text": UTF-16 with BOM
    ROWS.replace("\r\n", "\r").encode("gbk"),    # old Mac Excel: bare CR
    ROWS.replace("\r\n", "\n").encode("utf-8"),
], ids=["utf8", "utf8-bom", "gbk", "utf16-bom", "bare-cr", "lf"])
def test_csv_in_every_encoding_and_line_ending_reads_the_same(content):
    table = read_table(content, "f.csv")
    assert table.header == ["名称", "编码"]
    assert cells(table) == [(2, {"名称": "甲", "编码": "1"}), (3, {"名称": "乙", "编码": "2"})]


def test_quoted_line_breaks_survive_bare_cr_files():
    table = read_table(b'a,b\r"x\ry",2\r', "f.csv")
    assert cells(table) == [(2, {"a": "x\ry", "b": "2"})]


def test_utf16_without_bom_is_named():
    with pytest.raises(InvalidArgument, match="UTF-16 without a byte-order mark"):
        read_table(ROWS.encode("utf-16-le"), "f.csv")


def refusal(content: bytes, filename: str, **limits) -> str:
    with pytest.raises(InvalidArgument) as caught:
        read_table(content, filename, limits=Limits(**limits))
    assert caught.value.violations[0].field == "content"
    return caught.value.message


def test_row_limit_names_the_row_one_too_many():
    content = b"a\n" + b"x\n" * 11
    assert "at most 10 rows per file (row 12" in refusal(content, "f.csv", max_rows=10)


def test_column_and_cell_limits_name_row_and_column():
    assert "row 2 has 5 columns; at most 4" in refusal(b"a\n1,2,3,4,5\n", "f.csv",
                                                       max_columns=4)
    assert "row 3, column 2: the cell has 11 characters; at most 10" in refusal(
        b"a,b\n1,2\n3," + b"x" * 11 + b"\n", "f.csv", max_cell_chars=10)


def test_blank_rows_are_skipped_up_to_a_limit():
    assert read_table(b"a\n\n\n\nx\n", "f.csv").rows == [(5, {"a": "x"})]
    assert "row 5: more than 3 blank rows" in refusal(b"a\n\n\n\n\nx\n", "f.csv",
                                                      max_blank_rows=3)


def xlsx(*rows) -> bytes:
    return workbook(list(rows))


def test_xlsx_values_read_as_the_user_sees_them():
    table = read_table(xlsx(["code", "price", "count"], ["A1", 12.5, 3.0], [None, None, None],
                            ["B2", 7, None]), "f.xlsx")
    assert cells(table) == [(2, {"code": "A1", "price": "12.5", "count": "3"}),
                            (4, {"code": "B2", "price": "7", "count": ""})]


def test_zip_members_are_measured_before_inflating():
    bomb = corpus.workbook(["<worksheet>", b" " * (8 * 1024 * 1024), "</worksheet>"], level=1)
    assert "inflates" in refusal(bomb, "f.xlsx")
    assert "inflates to more than 1000 bytes" in refusal(xlsx(["a"], ["b"]), "f.xlsx",
                                                         max_inflated_bytes=1000)
