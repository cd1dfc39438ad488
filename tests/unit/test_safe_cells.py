"""Every XLSX/CSV cell the product writes goes through shared/safecells.py: text a
spreadsheet would evaluate (= + - @ tab CR first) is written with a leading apostrophe;
numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import polars as pl
import pytest
from openpyxl import load_workbook

from services.flow.adapters.files import SheetWriter
from services.registration.adapters.letters import to_xlsx
from services.registration.domain.authorizations import Letter
from shared.safecells import is_formula, safe_cell, safe_row, safe_text_column

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_would_be_a_formula_is_quoted(text):
    assert safe_cell(text) == "'" + text
    assert not is_formula(safe_cell(text))


def test_numbers_and_plain_text_are_left_alone():
    assert safe_row([-5, Decimal("-1.50"), 0, None, "上海", "a=b", "1-2"]) == [
        -5, Decimal("-1.50"), 0, None, "上海", "a=b", "1-2"]


def test_the_column_form_matches_the_cell_form():
    frame = pl.DataFrame({"text": [*HOSTILE, "plain", "中文"]})
    assert frame.select(safe_text_column(pl.col("text"))).to_series().to_list() == [
        safe_cell(text) for text in frame["text"]]


def _xlsx_values(content: bytes) -> list:
    book = load_workbook(io.BytesIO(content))
    values = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate
                values.append(cell.value)
    return values


def test_an_authorization_letter_never_holds_a_formula():
    letter = Letter(letter_no="L-1", dealer_name="=cmd|' /C calc'!A0", customer_name=HOSTILE[0],
                    scope="+A系列", department="@心内科", valid_from="2026-01-01",
                    valid_to="2026-12-31", owner="-王", issued_on="2026-01-01")
    values = _xlsx_values(to_xlsx(letter))
    assert not any(is_formula(v) for v in values)
    assert "'" + HOSTILE[0] in values and "'@心内科" in values


def test_flow_reports_never_hold_a_formula():
    rows = pl.DataFrame({"a": HOSTILE, "b": ["ok"] * len(HOSTILE)})
    values = _xlsx_values(SheetWriter().xlsx(["列A", "列B"], rows))
    assert not any(is_formula(v) for v in values) and "'" + HOSTILE[0] in values
    text = SheetWriter().csv(["列A", "列B"], rows).decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not any(is_formula(c) for c in cells) and "'" + HOSTILE[1] in cells
