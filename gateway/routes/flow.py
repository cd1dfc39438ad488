"""Sell-through (流向): uploads streamed to the flow service, their progress (JSON, or
pushed as server-sent events), errors and error report, accepted flow and its export,
column mappings, diversions and period closing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal
from urllib.parse import quote

import grpc
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from qudao.common.v1 import files_pb2
from qudao.flow.v1 import flow_pb2
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from gateway.clients import call
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    Body,
    Caller,
    IdempotencyKey,
    Page,
    Services,
    client_reference,
)
from gateway.uploads import IMPORT_BODY, MAX_FLOW_FILE_BYTES, format_of
from shared.context import outgoing_metadata
from shared.errors import InvalidArgument

router = APIRouter(prefix="/api/v1/flow", tags=["flow"])

CHUNK_BYTES = 1024 * 1024
UPLOAD_TIMEOUT_SECONDS = 1800.0
WATCH_TIMEOUT_SECONDS = 3600.0
ColumnName = Literal["sold_on", "customer_name", "department", "product_code", "product_name",
                     "spec", "udi", "gtin", "batch", "expiry_date", "serial", "quantity",
                     "unit_price", "amount", "production_date", "remark"]
StatusName = Literal["queued", "validating", "accepted", "rejected", "failed", "superseded"]
CheckName = Literal["format", "hospital", "udi", "batch", "quantity", "authorization",
                    "duplicate", "date"]
DiversionStatusName = Literal["open", "confirmed", "dismissed"]


def _column(name: str) -> int:
    return enum_number(flow_pb2.FlowColumn.DESCRIPTOR, name) or 0


class MappingEntryBody(Body):
    column: ColumnName
    header: str = Field(default="", max_length=200, description="header text in the file")
    position: int = Field(default=0, ge=0, le=1000,
                          description="1-based column position, when header is empty")


async def _body_chunks(request: Request, seen: dict) -> AsyncIterator[bytes]:
    """The request body (raw, or the ``file`` field of a form upload, whose name goes
    into ``seen``) in chunks of about 1 MiB, never held whole."""
    content_type = request.headers.get("content-type", "")
    total = 0

    def count(size: int) -> None:
        nonlocal total
        total += size
        if total > MAX_FLOW_FILE_BYTES:
            raise HTTPException(413, f"the file exceeds {MAX_FLOW_FILE_BYTES} bytes")

    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidArgument.field("file", "send the file in the form field 'file'")
            seen["filename"] = upload.filename or ""
            seen["content_type"] = upload.content_type or ""
            while chunk := await upload.read(CHUNK_BYTES):
                count(len(chunk))
                yield chunk
        return
    buffer = bytearray()
    async for piece in request.stream():
        count(len(piece))
        buffer += piece
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


@router.post("/uploads", status_code=201, openapi_extra=IMPORT_BODY)
async def upload_flow_file(
        request: Request, caller: Caller, services: Services, key: IdempotencyKey,
        dealer_id: Annotated[str, Query(max_length=64)] = "",
        filename: Annotated[str, Query(max_length=200)] = "",
        period_start: Annotated[str, Query(max_length=10, description="YYYY-MM-DD")] = "",
        period_end: Annotated[str, Query(max_length=10, description="YYYY-MM-DD")] = "",
        replaces_upload_id: Annotated[str, Query(max_length=64)] = "",
        client_request_id: Annotated[str, Query(max_length=100)] = "",
        header_row: Annotated[int, Query(ge=0, le=1000)] = 0,
        sheet_name: Annotated[str, Query(max_length=100)] = "",
        size_bytes: Annotated[int, Query(ge=0)] = 0,
        sha256: Annotated[str, Query(max_length=64)] = "",
        encoding: Literal["utf8", "gbk", "gb18030", ""] = "",
        mapping: Annotated[str, Query(max_length=4000, description=(
            'JSON list of {"column": ..., "header": ...} when the headers are not the '
            "known ones"))] = "") -> dict:
    """A sell-through file, CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX, as the raw
    body or a form upload (field ``file``). Answers at once with the queued upload; follow
    it at ``/flow/uploads/{id}`` or ``/flow/uploads/{id}/events``. The upload is accepted
    only when every row passes; ``replaces_upload_id`` replaces an accepted upload of an
    open period. ``Idempotency-Key`` stands for ``client_request_id``: a retry answers the
    first upload."""
    entries = []
    if mapping:
        try:
            entries = [MappingEntryBody.model_validate(item) for item in json.loads(mapping)]
        except (ValueError, TypeError) as exc:
            raise InvalidArgument.field("mapping", f"not a list of column mappings: "
                                                   f"{str(exc)[:200]}") from None
    name = filename
    content_type = request.headers.get("content-type", "")
    file_format = format_of(content_type)
    seen: dict = {}
    chunks = _body_chunks(request, seen)
    first = await anext(chunks, b"")
    name = name or seen.get("filename", "")
    file_format = file_format or format_of(seen.get("content_type", ""))
    if not file_format and name.lower().endswith(".xlsx"):
        file_format = files_pb2.FILE_FORMAT_XLSX
    metadata = flow_pb2.UploadMetadata(
        dealer_id=dealer_id or caller.dealer_id, filename=name or "flow.csv",
        format=file_format, header_row=header_row, sheet_name=sheet_name,
        size_bytes=size_bytes, sha256=sha256.lower(), period_start=period_start,
        period_end=period_end,
        client_request_id=client_reference(client_request_id, key, "client_request_id"),
        replaces_upload_id=replaces_upload_id,
        encoding=enum_number(files_pb2.TextEncoding.DESCRIPTOR, encoding) or 0
        if encoding else 0,
        mapping=[flow_pb2.ColumnMapping(column=_column(e.column), header=e.header,
                                        column_index=e.position) for e in entries])

    async def messages():
        yield flow_pb2.UploadFlowFileRequest(metadata=metadata)
        if first:
            yield flow_pb2.UploadFlowFileRequest(chunk=first)
        async for chunk in chunks:
            yield flow_pb2.UploadFlowFileRequest(chunk=chunk)

    response = await services.flow.UploadFlowFile(
        messages(), metadata=outgoing_metadata(), timeout=UPLOAD_TIMEOUT_SECONDS)
    return to_json(response.upload)


@router.get("/uploads")
async def list_uploads(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                       status: list[StatusName] = Query(default=[])) -> dict:  # noqa: B008
    return to_json(await call(services.flow.ListUploads, flow_pb2.ListUploadsRequest(
        dealer_id=dealer_id, page=page,
        statuses=[enum_number(flow_pb2.UploadStatus.DESCRIPTOR, s) for s in status])))


@router.get("/uploads/{upload_id}")
async def get_upload(upload_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.flow.GetUpload,
                               flow_pb2.GetUploadRequest(id=upload_id))).upload)


@router.get("/uploads/{upload_id}/events",
            responses={200: {"content": {"text/event-stream": {}}}})
async def watch_upload(upload_id: str, caller: Caller, services: Services) -> Response:
    """Server-sent events: a ``progress`` event whenever the upload changes, ``done`` with
    the final state."""
    stream = services.flow.WatchUpload(flow_pb2.WatchUploadRequest(id=upload_id),
                                       metadata=outgoing_metadata(),
                                       timeout=WATCH_TIMEOUT_SECONDS)
    first = await stream.read()  # errors (404) surface before the stream starts

    async def events():
        message = first
        try:
            while message is not grpc.aio.EOF:
                upload = to_json(message.upload)
                finished = upload["status"] in ("accepted", "rejected", "failed",
                                                "superseded")
                kind = "done" if finished else "progress"
                yield f"event: {kind}\ndata: {json.dumps(upload, ensure_ascii=False)}\n\n"
                if finished:
                    return
                message = await stream.read()
        finally:
            stream.cancel()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/uploads/{upload_id}/errors")
async def upload_errors(upload_id: str, caller: Caller, services: Services, page: Page,
                        check: CheckName | None = None) -> dict:
    return to_json(await call(services.flow.GetUploadErrors, flow_pb2.GetUploadErrorsRequest(
        upload_id=upload_id, page=page,
        check=enum_number(flow_pb2.FlowCheck.DESCRIPTOR, check) if check else 0)))


@router.get("/uploads/{upload_id}/error-report",
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument."
                                         "spreadsheetml.sheet": {}, "text/csv": {}}}})
async def error_report(upload_id: str, caller: Caller, services: Services,
                       format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    """The file as sent, with a column of reasons (Chinese and English) for each failing
    row. No cell is a formula."""
    stream = services.flow.DownloadErrorReport(flow_pb2.DownloadErrorReportRequest(
        upload_id=upload_id, format=files_pb2.EXPORT_FORMAT_CSV if format == "csv"
        else files_pb2.EXPORT_FORMAT_XLSX), metadata=outgoing_metadata(),
        timeout=UPLOAD_TIMEOUT_SECONDS)
    first = await stream.read()

    async def body():
        message = first
        while message is not grpc.aio.EOF:
            yield message.chunk
            message = await stream.read()

    return StreamingResponse(body(), media_type=first.content_type, headers={
        "Content-Disposition": "attachment; filename*=UTF-8''" + quote(first.filename)})


def _flow_query(dealer_id: str, product_code: str, gtin: str, batch: str, customer_id: str,
                upload_id: str, sold_from: str, sold_to: str) -> flow_pb2.FlowRowQuery:
    return flow_pb2.FlowRowQuery(dealer_id=dealer_id, product_code=product_code, gtin=gtin,
                                 batch=batch, customer_id=customer_id, upload_id=upload_id,
                                 sold_from=sold_from, sold_to=sold_to)


@router.get("/rows")
async def list_flow_rows(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                         product_code: str = "", gtin: str = "", batch: str = "",
                         customer_id: str = "", upload_id: str = "", sold_from: str = "",
                         sold_to: str = "") -> dict:
    """Accepted flow (per dealer, product, batch, customer or transfer, department, day)."""
    return to_json(await call(services.flow.ListFlowRows, flow_pb2.ListFlowRowsRequest(
        page=page, query=_flow_query(dealer_id, product_code, gtin, batch, customer_id,
                                     upload_id, sold_from, sold_to))))


@router.get("/rows/export", responses={200: {"content": {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
async def export_flow_rows(caller: Caller, services: Services, dealer_id: str = "",
                           product_code: str = "", gtin: str = "", batch: str = "",
                           customer_id: str = "", upload_id: str = "", sold_from: str = "",
                           sold_to: str = "") -> Response:
    exported = (await call(services.flow.ExportFlowRows, flow_pb2.ExportFlowRowsRequest(
        query=_flow_query(dealer_id, product_code, gtin, batch, customer_id, upload_id,
                          sold_from, sold_to)))).file
    return Response(content=exported.content, media_type=exported.content_type, headers={
        "Content-Disposition": "attachment; filename*=UTF-8''" + quote(exported.filename)})


class MappingBody(Body):
    mapping: list[MappingEntryBody] = Field(max_length=100)


@router.get("/column-mappings/{dealer_id}")
async def get_column_mapping(dealer_id: str, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.flow.GetColumnMapping,
                              flow_pb2.GetColumnMappingRequest(dealer_id=dealer_id)))


@router.put("/column-mappings/{dealer_id}")
async def set_column_mapping(dealer_id: str, body: MappingBody, caller: Caller,
                             services: Services) -> dict:
    return to_json(await call(services.flow.SetColumnMapping, flow_pb2.SetColumnMappingRequest(
        dealer_id=dealer_id, mapping=[flow_pb2.ColumnMapping(
            column=_column(e.column), header=e.header, column_index=e.position)
            for e in body.mapping])))


@router.get("/diversions")
async def list_diversions(caller: Caller, services: Services, page: Page,
                          selling_dealer_id: str = "", shipped_dealer_id: str = "",
                          gtin: str = "", batch: str = "",
                          status: DiversionStatusName | None = None) -> dict:
    """Diversions (窜货): HQ sees all, a channel manager those of its dealers' goods."""
    return to_json(await call(services.flow.ListDiversions, flow_pb2.ListDiversionsRequest(
        selling_dealer_id=selling_dealer_id, shipped_dealer_id=shipped_dealer_id, gtin=gtin,
        batch=batch, page=page,
        status=enum_number(flow_pb2.DiversionStatus.DESCRIPTOR, status) if status else 0)))


@router.get("/diversions/{diversion_id}")
async def get_diversion(diversion_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.flow.GetDiversion,
                               flow_pb2.GetDiversionRequest(id=diversion_id))).diversion)


class ResolveBody(Body):
    status: Literal["confirmed", "dismissed"]
    note: str = Field(min_length=1, max_length=2000)


@router.post("/diversions/{diversion_id}/resolve")
async def resolve_diversion(diversion_id: str, body: ResolveBody, caller: Caller,
                            services: Services) -> dict:
    return to_json((await call(services.flow.ResolveDiversion, flow_pb2.ResolveDiversionRequest(
        diversion_id=diversion_id, note=body.note,
        status=enum_number(flow_pb2.DiversionStatus.DESCRIPTOR, body.status)))).diversion)


class ClosePeriodBody(Body):
    closed_through: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


@router.get("/period-close")
async def get_period_close(caller: Caller, services: Services) -> dict:
    return to_json(await call(services.flow.GetPeriodClose, flow_pb2.GetPeriodCloseRequest()))


@router.post("/period-close")
async def close_period(body: ClosePeriodBody, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.flow.ClosePeriod, flow_pb2.ClosePeriodRequest(
        closed_through=body.closed_through)))
