"""Reading imported CSV (UTF-8 with or without BOM, GBK/GB18030) and XLSX files into
rows of strings keyed by header."""

from __future__ import annotations

import csv
import io

from qudao.common.v1 import files_pb2

from shared.errors import InvalidArgument

MAX_ROWS = 100_000


def read_rows(content: bytes, filename: str, file_format: int,
              encoding: int) -> tuple[list[str], list[dict[str, str]]]:
    if not content:
        raise InvalidArgument.field("content", "the file is empty")
    is_xlsx = file_format == files_pb2.FILE_FORMAT_XLSX or (
        file_format == files_pb2.FILE_FORMAT_UNSPECIFIED
        and (filename.lower().endswith(".xlsx") or content[:2] == b"PK"))
    if is_xlsx:
        return _xlsx(content)
    return _csv(_decode(content, encoding))


def _decode(content: bytes, encoding: int) -> str:
    if encoding in (files_pb2.TEXT_ENCODING_GBK, files_pb2.TEXT_ENCODING_GB18030):
        return content.decode("gb18030")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        if encoding == files_pb2.TEXT_ENCODING_UTF8:
            raise InvalidArgument.field("encoding", "the file is not valid UTF-8") from None
        return content.decode("gb18030", errors="replace")


def _csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        raise InvalidArgument.field("content", "the file has no header row")
    header = [h.strip() for h in rows[0]]
    if len(rows) - 1 > MAX_ROWS:
        raise InvalidArgument.field("content", f"at most {MAX_ROWS} rows per file")
    return header, [{h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header)}
                    for r in rows[1:] if any(cell.strip() for cell in r)]


def _xlsx(content: bytes) -> tuple[list[str], list[dict[str, str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:
        raise InvalidArgument.field("content", f"not a readable XLSX file: {exc}") from exc
    sheet = book.worksheets[0]
    rows = [["" if v is None else str(v).strip() for v in row]
            for row in sheet.iter_rows(values_only=True)]
    if not rows:
        raise InvalidArgument.field("content", "the file has no header row")
    header = rows[0]
    return header, [{h: (r[i] if i < len(r) else "") for i, h in enumerate(header)}
                    for r in rows[1:] if any(r)]
