"""Reading an uploaded CSV or XLSX file into rows of strings keyed by header, for every
bulk import (dealers, customers, leads, products).

Files come from spreadsheets people keep by hand: CSV saved by Excel on a Chinese Windows
(GBK/GB18030) or elsewhere (UTF-8, with or without BOM), or XLSX straight from Excel or
WPS. Each row keeps its number as the user sees it in the file (the header is row 1,
blank lines count), so an error report points at the right line."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from qudao.common.v1 import files_pb2

from shared.errors import InvalidArgument

MAX_ROWS = 100_000


@dataclass(frozen=True)
class Table:
    header: list[str]
    # (row number in the file, header → stripped value); blank rows are left out.
    rows: list[tuple[int, dict[str, str]]]

    def column(self, *names: str) -> str | None:
        """The first of ``names`` (a field's accepted headers) the file has."""
        present = set(self.header)
        return next((name for name in names if name in present), None)


def is_xlsx(content: bytes, filename: str, file_format: int) -> bool:
    if file_format == files_pb2.FILE_FORMAT_XLSX:
        return True
    if file_format == files_pb2.FILE_FORMAT_CSV:
        return False
    return content[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")


def read_table(content: bytes, filename: str = "", file_format: int = 0, encoding: int = 0,
               max_rows: int = MAX_ROWS) -> Table:
    if not content:
        raise InvalidArgument.field("content", "the file is empty")
    if is_xlsx(content, filename, file_format):
        records = _xlsx_records(content)
    else:
        records = csv.reader(io.StringIO(decode_text(content, encoding)))
    numbered = enumerate(([("" if cell is None else str(cell)).strip() for cell in record]
                          for record in records), start=1)
    # Stop reading one row past the limit: a huge file costs no more than a full one.
    rows = list(itertools.islice(((number, cells) for number, cells in numbered if any(cells)),
                                 max_rows + 2))
    if not rows:
        raise InvalidArgument.field("content", "the file has no header row")
    if len(rows) - 1 > max_rows:
        raise InvalidArgument.field("content", f"at most {max_rows} rows per file")
    (_, header), body = rows[0], rows[1:]
    return Table(header, [(number, {name: cells[index] if index < len(cells) else ""
                                    for index, name in enumerate(header) if name})
                          for number, cells in body])


def decode_text(content: bytes, encoding: int = 0) -> str:
    if encoding in (files_pb2.TEXT_ENCODING_GBK, files_pb2.TEXT_ENCODING_GB18030):
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidArgument.field("encoding", "the file is not GBK/GB18030 text") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        if encoding == files_pb2.TEXT_ENCODING_UTF8:
            raise InvalidArgument.field("encoding", "the file is not valid UTF-8") from None
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidArgument.field(
            "encoding", "the file is neither UTF-8 nor GB18030 text") from None


def _xlsx_records(content: bytes) -> Iterator[tuple]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise InvalidArgument.field("content", f"not a readable XLSX file: {exc}") from exc
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()
