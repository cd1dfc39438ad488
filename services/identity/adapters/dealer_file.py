"""Reading a dealer import file (CSV in UTF-8/GBK/GB18030, or XLSX) into header + rows of
strings. Decoding only; the rules for each row live in domain/dealer_import.py."""

from __future__ import annotations

import csv
import io

from shared.errors import InvalidArgument

MAX_ROWS = 20_000


def detect_format(content: bytes, filename: str, requested: str = "") -> str:
    if requested in ("csv", "xlsx"):
        return requested
    if content[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        return "xlsx"
    return "csv"


def decode_text(content: bytes, encoding: str = "") -> str:
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for candidate in candidates:
        try:
            return content.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    raise InvalidArgument.field("encoding", "the file is neither UTF-8 nor GB18030 text")


def read_rows(content: bytes, filename: str = "", file_format: str = "",
              encoding: str = "") -> list[list[str]]:
    """All rows (header first) as lists of stripped strings."""
    if not content:
        raise InvalidArgument.field("content", "the file is empty")
    if detect_format(content, filename, file_format) == "xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise InvalidArgument.field("content", f"not a readable XLSX file: {exc}") from exc
        sheet = book.worksheets[0]
        rows = [["" if cell is None else str(cell).strip() for cell in row]
                for row in sheet.iter_rows(values_only=True)]
        book.close()
    else:
        text = decode_text(content, encoding)
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    rows = [row for row in rows if any(row)] if rows else []
    if len(rows) > MAX_ROWS + 1:
        raise InvalidArgument.field("content", f"at most {MAX_ROWS} rows per file")
    return rows
