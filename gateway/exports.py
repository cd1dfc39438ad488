"""List exports as XLSX or CSV: the gateway pages through a service's List RPC as the
caller (so the export holds exactly what the caller's list shows) and streams the rows
out. CSV is written page by page as the pages arrive; XLSX rows go into openpyxl's
write-only workbook (constant memory) and the finished file is streamed in chunks.
Every cell goes through shared/safecells.py: text never becomes a formula."""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from gateway.clients import call
from gateway.protojson import to_json
from shared.errors import FailedPrecondition
from shared.pagination import MAX_PAGE_SIZE
from shared.safecells import safe_row

ExportFormat = Literal["xlsx", "csv"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
# The documented import maximum; an export past it is narrowed by its filters instead.
MAX_EXPORT_ROWS = 100_000
EXPORT_RESPONSES = {200: {"description": "the list as a file", "content": {
    XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}}}}}


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], Any]


def field(*path: str) -> Callable[[dict], Any]:
    """The value at ``path`` of a to_json dict; money as yuan, lists joined."""
    def pick(item: dict) -> Any:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, dict) and "amount_minor" in value:
            return Decimal(value["amount_minor"]).scaleb(-2)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value
    return pick


def columns(*pairs: tuple[str, Callable[[dict], Any]]) -> list[Column]:
    return [Column(header, value) for header, value in pairs]


async def all_items(method, request, items_field: str) -> AsyncIterator[list[dict]]:
    """Every page of a List RPC as the caller, as to_json dicts."""
    request.page.page_size = MAX_PAGE_SIZE
    request.page.page_token = ""
    rows = 0
    while True:
        response = await call(method, request)
        items = [to_json(item) for item in getattr(response, items_field)]
        rows += len(items)
        if rows > MAX_EXPORT_ROWS:
            raise FailedPrecondition(f"the export has more than {MAX_EXPORT_ROWS} rows: "
                                     "narrow it with the list's filters", reason="TOO_MANY_ROWS")
        yield items
        if not response.page.next_page_token:
            return
        request.page.page_token = response.page.next_page_token


def _cells(item: dict, cols: list[Column]) -> list:
    return safe_row(column.value(item) for column in cols)


async def _rows(pages: AsyncIterator[list[dict]], cols: list[Column],
                explode: Callable[[dict], Iterable[dict]] | None) -> AsyncIterator[list[list]]:
    async for items in pages:
        rows = []
        for item in items:
            for row in (explode(item) if explode else (item,)):
                rows.append(_cells(row, cols))
        yield rows


async def _csv(header: list[str], rows: AsyncIterator[list[list]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    # A BOM, so Excel opens the UTF-8 (Chinese) text as such.
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    async for page in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(["" if value is None else value for value in row] for row in page)
        yield buffer.getvalue().encode()


async def _xlsx(title: str, header: list[str], rows: AsyncIterator[list[list]]):
    """The workbook in a spooled file (memory up to 8 MB, then disk), written whole
    before the response starts: a list that fails midway is still a problem+json."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    async for page in rows:
        for row in page:
            sheet.append(row)
    file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (closed below)
    book.save(file)
    file.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        with file:
            while chunk := file.read(256 * 1024):
                yield chunk
    return chunks()


async def export(pages: AsyncIterator[list[dict]], cols: list[Column], export_format: str,
                 name: str, explode: Callable[[dict], Iterable[dict]] | None = None
                 ) -> StreamingResponse:
    """The response streaming ``pages`` as an XLSX or CSV file named ``name``. The first
    page is fetched before answering, so a refused list is a problem+json, not a broken
    download; CSV then streams page by page."""
    first = await anext(pages, [])

    async def with_first() -> AsyncIterator[list[dict]]:
        yield first
        async for items in pages:
            yield items

    header = [column.header for column in cols]
    rows = _rows(with_first(), cols, explode)
    if export_format == "csv":
        body, media_type, filename = _csv(header, rows), CSV_TYPE, f"{name}.csv"
    else:
        body, media_type, filename = (await _xlsx(name, header, rows), XLSX_TYPE,
                                      f"{name}.xlsx")
    return StreamingResponse(body, media_type=media_type, headers={
        "Content-Disposition": "attachment; filename*=UTF-8''" + quote(filename)})
