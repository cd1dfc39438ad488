"""The flow service's gRPC servicer: translate the request, call the use case, translate
the answer."""

from __future__ import annotations

import asyncio
from datetime import date

from qudao.common.v1 import files_pb2, money_pb2
from qudao.flow.v1 import flow_pb2, flow_pb2_grpc

from services.flow.domain.checks import Check
from services.flow.domain.columns import FlowColumn, header_key
from services.flow.domain.model import (
    DiversionFilter,
    DiversionStatus,
    Encoding,
    FileFormat,
    FlowRowFilter,
    MappingEntry,
    UploadFilter,
    UploadStatus,
)
from services.flow.messages import (
    COLUMN_TO_PROTO,
    accepted_row_to_proto,
    diversion_to_proto,
    mapping_from_proto,
    row_error_to_proto,
    upload_to_proto,
)
from services.flow.usecases import diversions, projections, results, uploads
from services.flow.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import from_timestamp, page_info_of, page_request_of
from shared.errors import FailedPrecondition, InvalidArgument

PROJECTION_NAMES = {flow_pb2.PROJECTION_SHIPMENTS: "shipments",
                    flow_pb2.PROJECTION_PRODUCTS: "products",
                    flow_pb2.PROJECTION_CUSTOMERS: "customers",
                    flow_pb2.PROJECTION_AUTHORIZATIONS: "authorizations",
                    flow_pb2.PROJECTION_DEALERS: "dealers"}
INLINE_LIMIT = 48 * 1024 * 1024
WATCH_INTERVAL = 0.25




def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument.field(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _flow_filter(query: flow_pb2.FlowRowQuery) -> FlowRowFilter:
    return FlowRowFilter(
        dealer_ids=frozenset({query.dealer_id}) if query.dealer_id else None,
        product_code=query.product_code, gtin=query.gtin, batch=query.batch,
        customer_id=query.customer_id, upload_id=query.upload_id,
        sold_from=_day(query.sold_from, "query.sold_from"),
        sold_to=_day(query.sold_to, "query.sold_to"))


class FlowServicer(flow_pb2_grpc.FlowServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def UploadFlowFile(self, request_iterator, context):
        stream = request_iterator.__aiter__()
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            raise InvalidArgument.field("metadata", "the stream is empty") from None
        if first.WhichOneof("part") != "metadata":
            raise InvalidArgument.field("metadata", "the first message carries the metadata")
        meta = first.metadata
        request = uploads.UploadRequest(
            dealer_id=meta.dealer_id, filename=meta.filename.strip()[:255],
            format=FileFormat(meta.format) if meta.format in (0, 1, 2) else FileFormat(0),
            encoding=Encoding(meta.encoding) if meta.encoding in (0, 1, 2, 3) else Encoding(0),
            mapping=mapping_from_proto(meta.mapping), header_row=meta.header_row,
            sheet_name=meta.sheet_name, size_bytes=meta.size_bytes, sha256=meta.sha256,
            period_start=meta.period_start, period_end=meta.period_end,
            client_request_id=meta.client_request_id,
            replaces_upload_id=meta.replaces_upload_id)

        async def chunks():
            async for message in stream:
                if message.WhichOneof("part") != "chunk":
                    raise InvalidArgument.field("chunk", "only the first message carries "
                                                         "metadata")
                yield message.chunk

        upload = await uploads.receive_upload(request, chunks(), who=current_principal(),
                                              deps=self.deps)
        return flow_pb2.UploadFlowFileResponse(upload=upload_to_proto(upload))

    async def GetUpload(self, request, context):
        upload = await uploads.get_upload(request.id, who=current_principal(),
                                          uow=self.deps.uow(), scopes=self.deps.scopes)
        return flow_pb2.GetUploadResponse(upload=upload_to_proto(upload))

    async def WatchUpload(self, request, context):
        last = None
        while True:
            upload = await uploads.get_upload(request.id, who=current_principal(),
                                              uow=self.deps.uow(), scopes=self.deps.scopes)
            message = upload_to_proto(upload)
            if message != last:
                yield flow_pb2.WatchUploadResponse(upload=message)
                last = message
            if upload.status.finished:
                return
            await asyncio.sleep(WATCH_INTERVAL)

    async def ListUploads(self, request, context):
        which = UploadFilter(
            statuses=frozenset(UploadStatus(s) for s in request.statuses
                               if s in UploadStatus._value2member_map_),
            uploaded_after=from_timestamp(request.uploaded_after),
            uploaded_before=from_timestamp(request.uploaded_before))
        page = await uploads.list_uploads(request.dealer_id, which, page_request_of(request.page),
                                          who=current_principal(), uow=self.deps.uow(),
                                          scopes=self.deps.scopes)
        return flow_pb2.ListUploadsResponse(uploads=[upload_to_proto(u) for u in page.items],
                                            page=page_info_of(page))

    async def GetUploadErrors(self, request, context):
        check = Check(request.check) if request.check in Check._value2member_map_ else None
        page = await results.list_errors(request.upload_id, check, page_request_of(request.page),
                                         who=current_principal(), uow=self.deps.uow(),
                                         scopes=self.deps.scopes)
        return flow_pb2.GetUploadErrorsResponse(
            errors=[row_error_to_proto(e) for e in page.items], page=page_info_of(page))

    async def ExportErrorReport(self, request, context):
        csv = request.format == files_pb2.EXPORT_FORMAT_CSV
        name, content_type, content = await results.error_report(
            request.upload_id, csv, who=current_principal(), deps=self.deps)
        if len(content) > INLINE_LIMIT:
            raise FailedPrecondition("the report is too large to return at once: use "
                                     "DownloadErrorReport", reason="TOO_LARGE")
        return flow_pb2.ExportErrorReportResponse(file=files_pb2.ExportedFile(
            filename=name, content_type=content_type, content=content))

    async def DownloadErrorReport(self, request, context):
        csv = request.format == files_pb2.EXPORT_FORMAT_CSV
        first = True
        async for name, content_type, chunk in results.stream_report(
                request.upload_id, csv, who=current_principal(), deps=self.deps):
            yield flow_pb2.DownloadErrorReportResponse(
                filename=name if first else "", content_type=content_type if first else "",
                chunk=chunk)
            first = False

    async def ListFlowRows(self, request, context):
        requested = page_request_of(request.page)
        page = await results.list_flow_rows(_flow_filter(request.query), requested,
                                            who=current_principal(), uow=self.deps.uow(),
                                            scopes=self.deps.scopes)
        return flow_pb2.ListFlowRowsResponse(
            rows=[accepted_row_to_proto(r) for r in page.items], page=page_info_of(page))

    async def GetFlowStats(self, request, context):
        sales = await results.monthly_sales(_flow_filter(request.query), who=current_principal(),
                                            uow=self.deps.uow(), scopes=self.deps.scopes)
        return flow_pb2.GetFlowStatsResponse(rows=[flow_pb2.DealerMonthFlow(
            dealer_id=s.dealer_id, month=s.month, quantity=s.quantity,
            amount=money_pb2.Money(amount_minor=s.amount.amount_minor,
                                   currency=s.amount.currency)) for s in sales])

    async def ExportFlowRows(self, request, context):
        name, content, count = await results.export_flow_rows(
            _flow_filter(request.query), who=current_principal(), deps=self.deps)
        if len(content) > INLINE_LIMIT:
            raise FailedPrecondition("the export is too large: narrow the query",
                                     reason="TOO_LARGE")
        return flow_pb2.ExportFlowRowsResponse(file=files_pb2.ExportedFile(
            filename=name, content_type=results.XLSX_TYPE, content=content), rows=count)

    async def GetColumnMapping(self, request, context):
        mapping = await uploads.get_mapping(request.dealer_id, who=current_principal(),
                                            uow=self.deps.uow(), scopes=self.deps.scopes)
        return flow_pb2.GetColumnMappingResponse(dealer_id=request.dealer_id,
                                                 mapping=_saved(mapping))

    async def SetColumnMapping(self, request, context):
        entries = tuple(MappingEntry(e.column, e.header) for e in mapping_from_proto(
            request.mapping))
        if len(entries) != len(request.mapping):
            raise InvalidArgument.field("mapping", "every entry names a known column")
        mapping = await uploads.set_mapping(request.dealer_id, entries,
                                            who=current_principal(), deps=self.deps)
        return flow_pb2.SetColumnMappingResponse(dealer_id=request.dealer_id,
                                                 mapping=_saved(mapping))

    async def ListDiversions(self, request, context):
        status = DiversionStatus(request.status) if request.status in (1, 2, 3) else None
        which = DiversionFilter(
            selling_dealer_id=request.selling_dealer_id,
            shipped_dealer_id=request.shipped_dealer_id, gtin=request.gtin,
            batch=request.batch, status=status,
            detected_after=from_timestamp(request.detected_after),
            detected_before=from_timestamp(request.detected_before))
        requested = page_request_of(request.page)
        page = await diversions.list_diversions(which, requested, who=current_principal(),
                                                uow=self.deps.uow(), scopes=self.deps.scopes)
        return flow_pb2.ListDiversionsResponse(
            diversions=[diversion_to_proto(d) for d in page.items], page=page_info_of(page))

    async def GetDiversion(self, request, context):
        diversion = await diversions.get_diversion(request.id, who=current_principal(),
                                                   uow=self.deps.uow(), scopes=self.deps.scopes)
        return flow_pb2.GetDiversionResponse(diversion=diversion_to_proto(diversion))

    async def ResolveDiversion(self, request, context):
        status = DiversionStatus(request.status) if request.status in (1, 2, 3) else None
        if status is None:
            raise InvalidArgument.field("status", "must be confirmed or dismissed")
        diversion = await diversions.resolve_diversion(
            request.diversion_id, status, request.note, who=current_principal(), deps=self.deps)
        return flow_pb2.ResolveDiversionResponse(diversion=diversion_to_proto(diversion))

    async def ClosePeriod(self, request, context):
        day = await diversions.close_period(request.closed_through, who=current_principal(),
                                            deps=self.deps)
        return flow_pb2.ClosePeriodResponse(closed_through=day.isoformat())

    async def GetPeriodClose(self, request, context):
        day = await diversions.closed_through(uow=self.deps.uow())
        return flow_pb2.GetPeriodCloseResponse(closed_through=day.isoformat() if day else "")

    async def RebuildProjection(self, request, context):
        name = PROJECTION_NAMES.get(request.projection)
        if name is None:
            raise InvalidArgument.field("projection", "name a projection")
        rebuilt = await projections.rebuild_projection(name, who=current_principal(),
                                                       deps=self.deps)
        response = flow_pb2.RebuildProjectionResponse(
            projection=request.projection, events_replayed=rebuilt.events,
            rows_written=rebuilt.rows)
        response.started_at.FromDatetime(rebuilt.started_at)
        response.finished_at.FromDatetime(rebuilt.finished_at)
        return response


def _saved(mapping: dict[str, FlowColumn]) -> list[flow_pb2.ColumnMapping]:
    return [flow_pb2.ColumnMapping(column=COLUMN_TO_PROTO[column], header=key)
            for key, column in sorted(mapping.items(), key=lambda item: header_key(item[0]))]
