"""The flow service's domain objects as protobuf messages: its responses (api/) and its
event payloads (recorded by the use cases), and the few requests that carry domain
values."""

from __future__ import annotations

from datetime import date

from qudao.flow.v1 import events_pb2, flow_pb2

from services.flow.domain.checks import RowError
from services.flow.domain.columns import FlowColumn
from services.flow.domain.model import Diversion, FlowRow, MappingEntry, Upload

COLUMN_TO_PROTO = {column: index for index, column in enumerate(FlowColumn, start=1)}
PROTO_TO_COLUMN = {index: column for column, index in COLUMN_TO_PROTO.items()}


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _stamp(message, field: str, moment) -> None:
    if moment is not None:
        getattr(message, field).FromDatetime(moment)


def mapping_to_proto(entries) -> list[flow_pb2.ColumnMapping]:
    return [flow_pb2.ColumnMapping(column=COLUMN_TO_PROTO[e.column], header=e.header,
                                   column_index=e.position) for e in entries]


def mapping_from_proto(entries) -> tuple[MappingEntry, ...]:
    return tuple(MappingEntry(PROTO_TO_COLUMN[e.column], e.header.strip(), e.column_index)
                 for e in entries if e.column in PROTO_TO_COLUMN)


def upload_to_proto(upload: Upload) -> flow_pb2.Upload:
    message = flow_pb2.Upload(
        id=upload.id, dealer_id=upload.dealer_id, filename=upload.filename,
        format=int(upload.format), encoding=int(upload.encoding), status=int(upload.status),
        total_rows=upload.total_rows, processed_rows=upload.processed_rows,
        failed_rows=upload.failed_rows, progress_percent=upload.progress_percent,
        error_counts=[flow_pb2.CheckCount(check=int(check), rows=rows)
                      for check, rows in sorted(upload.error_counts.items())],
        mapping=mapping_to_proto(upload.mapping), sha256=upload.sha256,
        size_bytes=upload.size_bytes, period_start=_iso(upload.period.start),
        period_end=_iso(upload.period.end), failure_message=upload.failure_message,
        total_quantity=upload.total_quantity, uploaded_by=upload.uploaded_by,
        replaces_upload_id=upload.replaces_upload_id,
        superseded_by_upload_id=upload.superseded_by_upload_id,
        unknown_headers=list(upload.unknown_headers), transfer_rows=upload.transfer_rows,
        client_request_id=upload.client_request_id)
    message.total_amount.amount_minor = upload.total_amount.amount_minor
    message.total_amount.currency = upload.total_amount.currency
    _stamp(message, "uploaded_at", upload.uploaded_at)
    _stamp(message, "validation_started_at", upload.validation_started_at)
    _stamp(message, "finished_at", upload.finished_at)
    return message


def flow_row_to_proto(row: FlowRow) -> events_pb2.FlowRow:
    message = events_pb2.FlowRow(
        row_number=row.row_number, dealer_id=row.dealer_id, customer_id=row.customer_id,
        department=row.department, product_code=row.product_code, gtin=row.gtin,
        product_line=row.product_line, batch=row.batch, expiry_date=_iso(row.expiry),
        serials=list(row.serials), quantity=row.quantity, sold_on=_iso(row.sold_on),
        shipment_id=row.shipment_id, transfer_to_dealer_id=row.transfer_to_dealer_id,
        row_count=row.row_count)
    message.amount.amount_minor = row.amount.amount_minor
    message.amount.currency = row.amount.currency
    return message


def accepted_row_to_proto(row: FlowRow) -> flow_pb2.AcceptedFlowRow:
    message = flow_pb2.AcceptedFlowRow(
        upload_id=row.upload_id, dealer_id=row.dealer_id, row_number=row.row_number,
        row_count=row.row_count, customer_id=row.customer_id, customer_name=row.customer_name,
        transfer_to_dealer_id=row.transfer_to_dealer_id, department=row.department,
        product_code=row.product_code, gtin=row.gtin, product_line=row.product_line,
        batch=row.batch, expiry_date=_iso(row.expiry), serials=list(row.serials),
        quantity=row.quantity, sold_on=_iso(row.sold_on), shipment_id=row.shipment_id)
    message.amount.amount_minor = row.amount.amount_minor
    message.amount.currency = row.amount.currency
    return message


def diversion_to_proto(diversion: Diversion) -> flow_pb2.Diversion:
    message = flow_pb2.Diversion(
        id=diversion.id, upload_id=diversion.upload_id, row_number=diversion.row_number,
        selling_dealer_id=diversion.selling_dealer_id,
        shipped_dealer_id=diversion.shipped_dealer_id, product_code=diversion.product_code,
        gtin=diversion.gtin, batch=diversion.batch, serials=list(diversion.serials),
        quantity=diversion.quantity, customer_id=diversion.customer_id,
        customer_name=diversion.customer_name, sold_on=_iso(diversion.sold_on),
        shipment_id=diversion.shipment_id, ship_date=_iso(diversion.ship_date),
        status=int(diversion.status), resolution_note=diversion.resolution_note,
        resolved_by=diversion.resolved_by)
    _stamp(message, "detected_at", diversion.detected_at)
    _stamp(message, "resolved_at", diversion.resolved_at)
    return message


def row_error_to_proto(error: RowError) -> flow_pb2.FlowRowError:
    from qudao.common.v1 import files_pb2

    return flow_pb2.FlowRowError(
        error=files_pb2.RowError(row_number=error.row_number, column=error.column,
                                 code=error.code, message_zh=error.message_zh,
                                 message_en=error.message_en, value=error.value),
        check=int(error.check),
        candidates=[flow_pb2.CustomerCandidate(customer_id=c.customer_id, name=c.name,
                                               city_code=c.city_code, score_bps=c.score_bps)
                    for c in error.candidates])
