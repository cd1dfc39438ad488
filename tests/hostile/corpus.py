"""Hostile import files, generated: each is small on the wire and expensive to read
naively. ``CORPUS`` names each with what a careful reader must answer."""

from __future__ import annotations

import functools
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

# A workbook's fixed parts, as flow writes its reports.
from services.flow.adapters.files import _CONTENT_TYPES, _RELS, _WORKBOOK, _WORKBOOK_RELS

_SHEET_OPEN = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _header_row() -> str:
    return ('<row r="1">' + _cell("A1", "name") + _cell("B1", "credit_code") + "</row>")


def workbook(sheet_parts, *, level: int = 9) -> bytes:
    """An XLSX whose sheet XML is the concatenation of ``sheet_parts`` (strings or
    bytes, streamed into the archive so a gigabyte member costs no memory here)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for part in sheet_parts:
                sheet.write(part.encode() if isinstance(part, str) else part)
    return buffer.getvalue()


def sheet_size_bomb() -> bytes:
    """~1.6 KB declaring A1:XFD1048576 with one value in the far corner: a reader that
    trusts the dimension pads 1,048,576 rows to 16,384 columns."""
    return workbook([
        '<?xml version="1.0" encoding="UTF-8"?>', _SHEET_OPEN,
        '<dimension ref="A1:XFD1048576"/><sheetData>', _header_row(),
        '<row r="1048576">', _cell("XFD1048576", "x"), "</row></sheetData></worksheet>"])


def declared_dimension_only() -> bytes:
    """The same dimension, but only the header present."""
    return workbook([
        '<?xml version="1.0" encoding="UTF-8"?>', _SHEET_OPEN,
        '<dimension ref="A1:XFD1048576"/><sheetData>', _header_row(),
        "</sheetData></worksheet>"])


@functools.cache
def zip_bomb(inflated: int = 1024 ** 3) -> bytes:
    """About 1 MB inflating to ``inflated`` bytes of whitespace inside the sheet."""
    block = b" " * (4 * 1024 * 1024)

    def parts():
        yield '<?xml version="1.0" encoding="UTF-8"?>' + _SHEET_OPEN + "<sheetData>"
        yield _header_row()
        for _ in range(inflated // len(block)):
            yield block
        yield "</sheetData></worksheet>"
    return workbook(parts())


def billion_laughs() -> bytes:
    """Nested entities: ten levels of ten, a billion "lol"s when expanded."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return workbook([
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE worksheet [', *entities, "]>",
        _SHEET_OPEN, "<sheetData>", _header_row(),
        '<row r="2">', _cell("A2", "&lol9;"), "</row></sheetData></worksheet>"])


def blank_rows_xlsx(count: int = 1_000_000) -> bytes:
    def parts():
        yield '<?xml version="1.0" encoding="UTF-8"?>' + _SHEET_OPEN + "<sheetData>"
        yield _header_row()
        yield "".join(f'<row r="{n}"/>' for n in range(2, count + 2))
        yield "</sheetData></worksheet>"
    return workbook(parts())


def huge_cell_xlsx(chars: int = 10 * 1000 * 1000) -> bytes:
    """Random letters, which compress like text (a run of one letter is a zip bomb)."""
    text = os.urandom(chars // 2).hex()
    return workbook([
        '<?xml version="1.0" encoding="UTF-8"?>', _SHEET_OPEN, "<sheetData>", _header_row(),
        '<row r="2">', _cell("A2", text), "</row></sheetData></worksheet>"], level=1)


def huge_cell_csv(chars: int = 10 * 1000 * 1000) -> bytes:
    return b"name,credit_code\n" + b"x" * chars + b",1\n"


def blank_rows_csv(count: int = 1_000_000) -> bytes:
    return b"name,credit_code\n" + b"\n" * count + b"a,1\n"


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[], bytes]
    filename: str
    # A phrase the refusal's detail must contain; empty for a file that is harmless once
    # its declarations are ignored (it is answered like any other).
    reason: str


CORPUS = [
    Hostile("sheet-size bomb", sheet_size_bomb, "bomb.xlsx", "column 16384"),
    Hostile("declared dimension only", declared_dimension_only, "dims.xlsx", ""),
    Hostile("zip bomb 1 MB to 1 GB", zip_bomb, "zip.xlsx", "inflate"),
    Hostile("billion laughs", billion_laughs, "laughs.xlsx", "XML entities"),
    Hostile("1,000,000 blank rows (XLSX)", blank_rows_xlsx, "blank.xlsx", "blank rows"),
    Hostile("1,000,000 blank rows (CSV)", blank_rows_csv, "blank.csv", "blank rows"),
    Hostile("10 MB cell (XLSX)", huge_cell_xlsx, "cell.xlsx", "characters"),
    Hostile("10 MB cell (CSV)", huge_cell_csv, "cell.csv", "characters"),
]
