"""What an upload's dealer reads afterwards: the failing rows with their reasons, the
error report (the original file with an error column), and accepted flow (listed by
dealer, product, batch, hospital and period, or exported)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import polars as pl

from services.flow.domain.checks import CODES, Candidate, Check, RowError
from services.flow.domain.model import FlowRow, FlowRowFilter, MonthlySales, UploadStatus
from services.flow.usecases.ports import Deps, FlowUnitOfWork
from services.flow.usecases.uploads import REPORT, get_upload, require_finished
from services.flow.usecases.validate import error_counts_by_row
from shared.context import Principal
from shared.errors import FailedPrecondition, NotFound
from shared.pagination import Page, PageRequest
from shared.scope import Scopes

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
ERROR_COLUMN = "错误原因 / Errors"
EXPORT_LIMIT = 1_000_000
FLOW_HEADERS = ["销售日期 sold on", "经销商 dealer", "客户 customer", "客户ID customer id",
                "调拨至 transfer to", "科室 department", "产品编码 product code", "GTIN",
                "产品线 product line", "批号 batch", "有效期 expiry", "序列号 serials",
                "数量 quantity", "金额(元) amount", "发货单 shipment", "上传 upload",
                "行号 row"]


async def list_errors(upload_id: str, check: Check | None, page: PageRequest, *,
                      who: Principal, uow: FlowUnitOfWork, scopes: Scopes) -> Page[RowError]:
    upload = await get_upload(upload_id, who=who, uow=uow, scopes=scopes)
    require_finished(upload, "the error list")
    async with uow.read():
        errors = await error_counts_by_row(uow, upload_id)
    if check is not None:
        errors = errors.filter(pl.col("check") == int(check))
    total = errors.height
    window = errors.slice(page.offset, page.size + 1)
    items = [_row_error(record) for record in window.iter_rows(named=True)]
    from shared.pagination import page_of

    return page_of(items, page, total)


def _row_error(record: dict) -> RowError:
    candidates = tuple(Candidate(**c) for c in json.loads(record["candidates"])) \
        if record["candidates"] else ()
    return RowError(row_number=record["row"], check=Check(record["check"]),
                    code=record["code"], column=record["column"], value=record["value"],
                    detail=record["detail"], candidates=candidates)


def reasons(errors: pl.DataFrame) -> pl.DataFrame:
    """One line per failing row: every reason, in Chinese and English."""
    codes = pl.DataFrame({"code": list(CODES), "zh": [c.zh for c in CODES.values()],
                          "en": [c.en for c in CODES.values()]})
    described = errors.join(codes, on="code", how="left").with_columns(text=pl.concat_str(
        pl.when(pl.col("column") != "").then(pl.format("[{}] ", pl.col("column")))
        .otherwise(pl.lit("")),
        pl.col("zh"), pl.lit(" / "), pl.col("en"),
        pl.when(pl.col("detail") != "").then(pl.format("（{}）", pl.col("detail")))
        .otherwise(pl.lit(""))))
    return described.group_by("row", maintain_order=True).agg(
        pl.col("text").str.join("；").alias("reason"))


async def error_report(upload_id: str, csv: bool, *, who: Principal,
                       deps: Deps) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of the error report: every row of the file as
    it was sent, with the reasons of the failing ones in an added last column."""
    uow = deps.uow()
    upload = await get_upload(upload_id, who=who, uow=uow, scopes=deps.scopes)
    require_finished(upload, "the error report")
    if upload.status not in (UploadStatus.REJECTED,):
        raise FailedPrecondition(f"upload {upload_id} has no failing rows "
                                 f"({upload.status.name.lower()})", reason="NO_ERRORS")
    stem = upload.filename.rsplit(".", 1)[0] or "flow"
    name = f"{stem}-错误报告.{'csv' if csv else 'xlsx'}"
    kind = REPORT + (".csv" if csv else "")
    async with uow.read():
        cached = [chunk async for chunk in uow.blobs.chunks(upload_id, kind)]
    if cached:
        return name, CSV_TYPE if csv else XLSX_TYPE, b"".join(cached)
    table = await deps.reader.read(upload)
    async with uow.read():
        errors = await error_counts_by_row(uow, upload_id)
    frame = table.frame.join(reasons(errors), on="row", how="left").drop("row")
    header = [*table.header, *([""] * (frame.width - 1 - len(table.header)))]
    if csv:
        content = deps.reports.csv([*header, ERROR_COLUMN], frame)
    else:
        content = deps.reports.xlsx([*header, ERROR_COLUMN], frame)
    async with uow:
        for seq, start in enumerate(range(0, len(content), 1024 * 1024)):
            await uow.blobs.put_chunk(upload_id, kind, seq, content[start:start + 1024 * 1024])
        await uow.commit()
    return name, CSV_TYPE if csv else XLSX_TYPE, content


async def _flow_filter(which: FlowRowFilter, who: Principal,
                       scopes: Scopes) -> FlowRowFilter | None:
    scope = await scopes.resolve(who, "flow.read")
    if which.dealer_ids:
        allowed = frozenset(d for d in which.dealer_ids if scope.allows(d))
        return replace(which, dealer_ids=allowed) if allowed else None
    return replace(which, dealer_ids=None if scope.all_dealers else scope.dealer_ids)


async def list_flow_rows(which: FlowRowFilter, page: PageRequest, *, who: Principal,
                         uow: FlowUnitOfWork, scopes: Scopes) -> Page[FlowRow]:
    scoped = await _flow_filter(which, who, scopes)
    if scoped is None:
        return Page([])
    async with uow.read():
        return await uow.flow_rows.page(scoped, page)


async def monthly_sales(which: FlowRowFilter, *, who: Principal, uow: FlowUnitOfWork,
                        scopes: Scopes) -> list[MonthlySales]:
    """Accepted sales to customers per dealer × month, over the dealers in scope."""
    scoped = await _flow_filter(which, who, scopes)
    if scoped is None:
        return []
    async with uow.read():
        return await uow.flow_rows.monthly_sales(scoped)


async def export_flow_rows(which: FlowRowFilter, *, who: Principal,
                           deps: Deps) -> tuple[str, bytes, int]:
    """The accepted flow the viewer may see as XLSX; naming a dealer outside the
    viewer's scope answers NOT_FOUND, like any other object of that dealer."""
    scoped = await _flow_filter(which, who, deps.scopes)
    if which.dealer_ids and scoped is None:
        raise NotFound(f"dealer {next(iter(which.dealer_ids))} not found")
    records: list[tuple] = []
    if scoped is not None:
        uow = deps.uow()
        async with uow.read():
            async for rows in uow.flow_rows.stream(scoped, EXPORT_LIMIT):
                records += [(r.sold_on.isoformat(), r.dealer_id, r.customer_name,
                             r.customer_id, r.transfer_to_dealer_id, r.department,
                             r.product_code, r.gtin, r.product_line, r.batch,
                             r.expiry.isoformat() if r.expiry else "", " ".join(r.serials),
                             str(r.quantity), _yuan(r.amount.amount_minor), r.shipment_id,
                             r.upload_id, str(r.row_number)) for r in rows]
    frame = pl.DataFrame(records, orient="row",
                         schema={f"c{i}": pl.Utf8 for i in range(len(FLOW_HEADERS))})
    return "流向明细.xlsx", deps.reports.xlsx(FLOW_HEADERS, frame), len(records)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


async def stream_report(upload_id: str, csv: bool, *, who: Principal, deps: Deps,
                        chunk_bytes: int = 1024 * 1024) -> AsyncIterator[tuple[str, str, bytes]]:
    name, content_type, content = await error_report(upload_id, csv, who=who, deps=deps)
    for start in range(0, max(len(content), 1), chunk_bytes):
        yield name, content_type, content[start:start + chunk_bytes]
