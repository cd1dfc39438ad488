"""The flow repositories over SQL: domain objects in, domain objects out. Dialect
differences (upserts, row locks, table locks) live here."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from functools import partial

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.flow.adapters.orm import (
    AuthorizationRow,
    ColumnMappingRow,
    CustomerRow,
    DealerLedgerRow,
    DealerRow,
    DiversionRow,
    FlowRowRow,
    PeriodCloseRow,
    ProductRow,
    SerialMoveRow,
    ShipmentLineRow,
    ShippedSerialRow,
    StockRow,
    UploadBlobRow,
    UploadRow,
)
from services.flow.domain.checks import Check
from services.flow.domain.columns import FlowColumn
from services.flow.domain.model import (
    Authorization,
    Customer,
    Dealer,
    Diversion,
    DiversionFilter,
    DiversionStatus,
    Encoding,
    FileFormat,
    FlowRow,
    FlowRowFilter,
    MappingEntry,
    MonthlySales,
    Movement,
    Period,
    Product,
    SerialMove,
    ShipmentLine,
    ShippedSerial,
    StockEntry,
    Upload,
    UploadFilter,
    UploadStatus,
)
from shared.clock import aware
from shared.db import dialect_insert, fetch_page
from shared.money import Money
from shared.pagination import Page, PageRequest

IN_BATCH = 500
# Pairs per IN list where a file needs many looked up: two parameters each, well under
# SQLite's and asyncpg's 32,767.
WIDE_IN_BATCH = 10_000


def _dialect_insert(session: AsyncSession):
    return partial(dialect_insert, session)


async def _rows_for_pairs(session: AsyncSession, table: str, columns: list[str],
                         first: str, second: str, pairs: list[tuple[str, str]],
                         where: str = "", **params) -> list:
    """Rows of ``table`` whose (first, second) is one of ``pairs``: one statement per
    many thousand pairs, joined through the table's index (json_each on SQLite,
    unnest on PostgreSQL) instead of a giant IN list."""
    if not pairs:
        return []
    selected = ", ".join(f"t.{column}" for column in columns)
    rows: list = []
    for part in _chunks(pairs, 50_000):
        if session.bind.dialect.name == "postgresql":
            sql = (f"SELECT {selected} FROM unnest(CAST(:a AS text[]), CAST(:b AS text[])) "
                   f"AS k(a, b) JOIN {table} t ON t.{first} = k.a AND t.{second} = k.b")
            values = {"a": [a for a, _ in part], "b": [b for _, b in part]}
        else:
            sql = (f"SELECT {selected} FROM json_each(:keys) AS k JOIN {table} t "
                   f"ON t.{first} = json_extract(k.value, '$[0]') "
                   f"AND t.{second} = json_extract(k.value, '$[1]')")
            values = {"keys": json.dumps(part, ensure_ascii=False)}
        if where:
            sql += f" WHERE {where}"
        rows += (await session.execute(_text(sql), {**values, **params})).all()
    return rows


def _chunks(items: list, size: int = IN_BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---- uploads ---------------------------------------------------------------------


def _upload(row: UploadRow) -> Upload:
    return Upload(
        id=row.id, dealer_id=row.dealer_id, filename=row.filename, format=FileFormat(row.format),
        encoding=Encoding(row.encoding), status=UploadStatus(row.status),
        size_bytes=row.size_bytes, sha256=row.sha256,
        period=Period(row.period_start, row.period_end), uploaded_by=row.uploaded_by,
        uploaded_at=aware(row.uploaded_at), client_request_id=row.client_request_id or "",
        header_row=row.header_row, sheet_name=row.sheet_name,
        mapping=tuple(MappingEntry(FlowColumn(e["column"]), e.get("header", ""),
                                   e.get("position", 0)) for e in row.mapping or []),
        replaces_upload_id=row.replaces_upload_id,
        superseded_by_upload_id=row.superseded_by_upload_id, total_rows=row.total_rows,
        processed_rows=row.processed_rows, failed_rows=row.failed_rows,
        error_counts={Check(int(k)): v for k, v in (row.error_counts or {}).items()},
        unknown_headers=tuple(row.unknown_headers or ()), failure_message=row.failure_message,
        total_quantity=row.total_quantity, total_amount=Money(row.total_amount_minor,
                                                              row.currency),
        transfer_rows=row.transfer_rows,
        validation_started_at=aware(row.validation_started_at)
        if row.validation_started_at else None,
        finished_at=aware(row.finished_at) if row.finished_at else None, worker=row.worker,
        heartbeat_at=aware(row.heartbeat_at) if row.heartbeat_at else None)


def _upload_values(upload: Upload) -> dict:
    return dict(
        dealer_id=upload.dealer_id, filename=upload.filename, format=int(upload.format),
        encoding=int(upload.encoding), status=int(upload.status), size_bytes=upload.size_bytes,
        sha256=upload.sha256, period_start=upload.period.start, period_end=upload.period.end,
        uploaded_by=upload.uploaded_by, uploaded_at=upload.uploaded_at,
        client_request_id=upload.client_request_id or None, header_row=upload.header_row,
        sheet_name=upload.sheet_name,
        mapping=[{"column": e.column.value, "header": e.header, "position": e.position}
                 for e in upload.mapping],
        replaces_upload_id=upload.replaces_upload_id,
        superseded_by_upload_id=upload.superseded_by_upload_id, total_rows=upload.total_rows,
        processed_rows=upload.processed_rows, failed_rows=upload.failed_rows,
        error_counts={str(int(k)): v for k, v in upload.error_counts.items()},
        unknown_headers=list(upload.unknown_headers), failure_message=upload.failure_message,
        total_quantity=upload.total_quantity,
        total_amount_minor=upload.total_amount.amount_minor,
        currency=upload.total_amount.currency, transfer_rows=upload.transfer_rows,
        validation_started_at=upload.validation_started_at, finished_at=upload.finished_at,
        worker=upload.worker, heartbeat_at=upload.heartbeat_at)


class SqlUploads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, upload: Upload) -> None:
        self.session.add(UploadRow(id=upload.id, **_upload_values(upload)))
        await self.session.flush()

    async def get(self, upload_id: str) -> Upload | None:
        row = await self.session.get(UploadRow, upload_id, populate_existing=True)
        return _upload(row) if row else None

    async def by_client_request(self, dealer_id: str, key: str) -> Upload | None:
        row = (await self.session.scalars(select(UploadRow).where(
            UploadRow.dealer_id == dealer_id, UploadRow.client_request_id == key))).first()
        return _upload(row) if row else None

    async def save(self, upload: Upload) -> None:
        await self.session.execute(update(UploadRow).where(UploadRow.id == upload.id)
                                   .values(**_upload_values(upload)))

    async def claim(self, worker: str, now: datetime, stale_before: datetime) -> Upload | None:
        candidates = (await self.session.scalars(
            select(UploadRow.id).where(or_(
                UploadRow.status == int(UploadStatus.QUEUED),
                and_(UploadRow.status == int(UploadStatus.VALIDATING),
                     or_(UploadRow.heartbeat_at.is_(None),
                         UploadRow.heartbeat_at < stale_before))))
            .order_by(UploadRow.uploaded_at).limit(5))).all()
        for upload_id in candidates:
            # Compare-and-set: of two replicas claiming at once, one wins.
            claimed = await self.session.execute(
                update(UploadRow).where(UploadRow.id == upload_id, or_(
                    UploadRow.status == int(UploadStatus.QUEUED),
                    and_(UploadRow.status == int(UploadStatus.VALIDATING),
                         or_(UploadRow.heartbeat_at.is_(None),
                             UploadRow.heartbeat_at < stale_before))))
                .values(status=int(UploadStatus.VALIDATING), worker=worker, heartbeat_at=now,
                        validation_started_at=now, processed_rows=0))
            if claimed.rowcount == 1:
                return await self.get(upload_id)
        return None

    async def heartbeat(self, upload_id: str, worker: str, now: datetime,
                        processed_rows: int, total_rows: int) -> bool:
        result = await self.session.execute(
            update(UploadRow).where(UploadRow.id == upload_id, UploadRow.worker == worker,
                                    UploadRow.status == int(UploadStatus.VALIDATING))
            .values(heartbeat_at=now, processed_rows=processed_rows, total_rows=total_rows))
        return result.rowcount == 1

    async def page(self, which: UploadFilter, page: PageRequest) -> Page[Upload]:
        query = select(UploadRow).order_by(UploadRow.uploaded_at.desc(), UploadRow.id)
        if which.dealer_ids is not None:
            query = query.where(UploadRow.dealer_id.in_(which.dealer_ids))
        if which.statuses:
            query = query.where(UploadRow.status.in_([int(s) for s in which.statuses]))
        if which.uploaded_after:
            query = query.where(UploadRow.uploaded_at >= which.uploaded_after)
        if which.uploaded_before:
            query = query.where(UploadRow.uploaded_at < which.uploaded_before)
        return (await fetch_page(self.session, query, page, count=True, keyset=True)).map(_upload)


class SqlBlobs:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put_chunk(self, upload_id: str, kind: str, seq: int, data: bytes) -> None:
        await self.session.execute(UploadBlobRow.__table__.insert().values(
            upload_id=upload_id, kind=kind, seq=seq, data=data))

    async def chunks(self, upload_id: str, kind: str) -> AsyncIterator[bytes]:
        seq = 0
        while True:
            data = (await self.session.execute(select(UploadBlobRow.data).where(
                UploadBlobRow.upload_id == upload_id, UploadBlobRow.kind == kind,
                UploadBlobRow.seq == seq))).scalar()
            if data is None:
                return
            yield data
            seq += 1

    async def delete(self, upload_id: str, kind: str) -> None:
        await self.session.execute(delete(UploadBlobRow).where(
            UploadBlobRow.upload_id == upload_id, UploadBlobRow.kind == kind))


class SqlMappings:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, dealer_id: str) -> dict[str, FlowColumn]:
        row = await self.session.get(ColumnMappingRow, dealer_id)
        if row is None:
            return {}
        return {key: FlowColumn(value) for key, value in row.mapping.items()
                if value in FlowColumn._value2member_map_}

    async def save(self, dealer_id: str, mapping: dict[str, FlowColumn], now: datetime) -> None:
        insert = _dialect_insert(self.session)
        values = {key: column.value for key, column in mapping.items()}
        statement = insert(ColumnMappingRow).values(dealer_id=dealer_id, mapping=values,
                                                    updated_at=now)
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=["dealer_id"], set_={"mapping": values, "updated_at": now}))


class SqlLedgers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version(self, dealer_id: str) -> int:
        return (await self.session.execute(select(DealerLedgerRow.version).where(
            DealerLedgerRow.dealer_id == dealer_id))).scalar() or 0

    async def bump(self, dealer_ids: Iterable[str]) -> None:
        ids = sorted({d for d in dealer_ids if d})
        if not ids:
            return
        insert = _dialect_insert(self.session)
        statement = insert(DealerLedgerRow).values([{"dealer_id": d, "version": 1} for d in ids])
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=["dealer_id"],
            set_={"version": DealerLedgerRow.version + 1}))

    async def advance(self, dealer_id: str, expected: int) -> bool:
        insert = _dialect_insert(self.session)
        if expected == 0:
            created = await self.session.execute(insert(DealerLedgerRow).values(
                dealer_id=dealer_id, version=1).on_conflict_do_nothing())
            if created.rowcount == 1:
                return True
        result = await self.session.execute(
            update(DealerLedgerRow).where(DealerLedgerRow.dealer_id == dealer_id,
                                          DealerLedgerRow.version == expected)
            .values(version=expected + 1))
        return result.rowcount == 1


class SqlPeriods:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def closed_through(self) -> date | None:
        return (await self.session.execute(
            select(func.max(PeriodCloseRow.closed_through)))).scalar()

    async def close(self, through: date, by: str, at: datetime) -> None:
        self.session.add(PeriodCloseRow(closed_through=through, closed_by=by, closed_at=at))
        await self.session.flush()


# ---- accepted flow ----------------------------------------------------------------


def _flow_row(row: FlowRowRow) -> FlowRow:
    return FlowRow(
        upload_id=row.upload_id, dealer_id=row.dealer_id, row_number=row.row_number,
        row_count=row.row_count, customer_id=row.customer_id, customer_name=row.customer_name,
        transfer_to_dealer_id=row.transfer_to_dealer_id, department=row.department,
        product_code=row.product_code, gtin=row.gtin, product_line=row.product_line,
        batch=row.batch, expiry=row.expiry,
        serials=tuple(s for s in row.serials.split("\n") if s), quantity=row.quantity,
        amount=Money(row.amount_minor, row.currency), sold_on=row.sold_on,
        shipment_id=row.shipment_id)


def _flow_query(which: FlowRowFilter):
    query = select(FlowRowRow).where(FlowRowRow.active.is_(True))
    if which.dealer_ids is not None:
        query = query.where(FlowRowRow.dealer_id.in_(which.dealer_ids))
    for column, value in ((FlowRowRow.product_code, which.product_code),
                          (FlowRowRow.gtin, which.gtin), (FlowRowRow.batch, which.batch),
                          (FlowRowRow.customer_id, which.customer_id),
                          (FlowRowRow.upload_id, which.upload_id)):
        if value:
            query = query.where(column == value)
    if which.sold_from:
        query = query.where(FlowRowRow.sold_on >= which.sold_from)
    if which.sold_to:
        query = query.where(FlowRowRow.sold_on <= which.sold_to)
    return query.order_by(FlowRowRow.sold_on, FlowRowRow.id)


class SqlFlowRows:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int:
        moved = await self.session.execute(update(FlowRowRow).where(
            FlowRowRow.customer_id == from_id).values(customer_id=to_id, customer_name=to_name))
        return moved.rowcount

    async def add(self, rows: list[FlowRow], currency: str) -> None:
        for part in _chunks(rows, 5000):
            await self.session.execute(FlowRowRow.__table__.insert(), [dict(
                upload_id=r.upload_id, dealer_id=r.dealer_id, active=True,
                row_number=r.row_number, row_count=r.row_count, customer_id=r.customer_id,
                customer_name=r.customer_name, transfer_to_dealer_id=r.transfer_to_dealer_id,
                department=r.department, product_code=r.product_code, gtin=r.gtin,
                product_line=r.product_line, batch=r.batch, expiry=r.expiry,
                serials="\n".join(r.serials), quantity=r.quantity,
                amount_minor=r.amount.amount_minor, currency=r.amount.currency or currency,
                sold_on=r.sold_on, shipment_id=r.shipment_id) for r in part])

    async def deactivate(self, upload_id: str) -> None:
        await self.session.execute(update(FlowRowRow).where(FlowRowRow.upload_id == upload_id)
                                   .values(active=False))

    async def movements(self, dealer_id: str, exclude_upload: str
                        ) -> dict[tuple[str, str], Movement]:
        out = (await self.session.execute(
            select(FlowRowRow.gtin, FlowRowRow.batch, func.sum(FlowRowRow.quantity))
            .where(FlowRowRow.dealer_id == dealer_id, FlowRowRow.active.is_(True),
                   FlowRowRow.upload_id != exclude_upload)
            .group_by(FlowRowRow.gtin, FlowRowRow.batch))).all()
        incoming = (await self.session.execute(
            select(FlowRowRow.gtin, FlowRowRow.batch, func.sum(FlowRowRow.quantity),
                   func.min(FlowRowRow.sold_on), func.min(FlowRowRow.shipment_id))
            .where(FlowRowRow.transfer_to_dealer_id == dealer_id, FlowRowRow.active.is_(True))
            .group_by(FlowRowRow.gtin, FlowRowRow.batch))).all()
        result: dict[tuple[str, str], Movement] = {
            (g, b): Movement(g, b, out=int(q)) for g, b, q in out}
        for g, b, q, first, shipment in incoming:
            current = result.get((g, b), Movement(g, b))
            result[(g, b)] = Movement(g, b, out=current.out, transferred_in=int(q),
                                      first_transfer_on=first, transfer_shipment_id=shipment)
        return result

    async def accepted_keys(self, dealer_id: str, start: date, end: date,
                            exclude_upload: str) -> set[tuple]:
        rows = (await self.session.execute(
            select(FlowRowRow.sold_on, FlowRowRow.customer_id, FlowRowRow.transfer_to_dealer_id,
                   FlowRowRow.department, FlowRowRow.gtin, FlowRowRow.batch)
            .where(FlowRowRow.dealer_id == dealer_id, FlowRowRow.active.is_(True),
                   FlowRowRow.upload_id != exclude_upload, FlowRowRow.sold_on >= start,
                   FlowRowRow.sold_on <= end, FlowRowRow.serials == ""))).all()
        return {(day, customer or transfer, department, gtin, batch)
                for day, customer, transfer, department, gtin, batch in rows}

    async def serial_moves(self, keys: list[tuple[str, str]], exclude_upload: str
                           ) -> dict[tuple[str, str], list[SerialMove]]:
        found: dict[tuple[str, str], list[SerialMove]] = defaultdict(list)
        rows = await _rows_for_pairs(
            self.session, "serial_moves",
            ["gtin", "serial", "dealer_id", "transfer_to_dealer_id", "upload_id"],
            "gtin", "serial", keys, "t.upload_id != :exclude", exclude=exclude_upload)
        for gtin, serial, dealer_id, transfer_to, upload_id in rows:
            found[(gtin, serial)].append(SerialMove(gtin, serial, dealer_id, transfer_to,
                                                    upload_id))
        return found

    async def add_serial_moves(self, moves: list[SerialMove]) -> None:
        for part in _chunks(moves, 5000):
            await self.session.execute(SerialMoveRow.__table__.insert(), [dict(
                gtin=m.gtin, serial=m.serial, dealer_id=m.dealer_id,
                transfer_to_dealer_id=m.transfer_to_dealer_id, upload_id=m.upload_id)
                for m in part])

    async def delete_serial_moves(self, upload_id: str) -> None:
        await self.session.execute(delete(SerialMoveRow).where(
            SerialMoveRow.upload_id == upload_id))

    async def page(self, which: FlowRowFilter, page: PageRequest) -> Page[FlowRow]:
        return (await fetch_page(self.session, _flow_query(which), page,
                                 count=True)).map(_flow_row)

    async def monthly_sales(self, which: FlowRowFilter) -> list[MonthlySales]:
        row = FlowRowRow
        if self.session.bind.dialect.name == "postgresql":
            month = func.to_char(row.sold_on, "YYYY-MM")
        else:  # SQLite keeps a date as "YYYY-MM-DD"
            month = func.substr(row.sold_on, 1, 7)
        month = month.label("month")
        query = (_flow_query(which).with_only_columns(
            row.dealer_id, month, func.sum(row.quantity), func.sum(row.amount_minor))
            .where(row.transfer_to_dealer_id == "").order_by(None)
            .group_by(row.dealer_id, month).order_by(month, row.dealer_id))
        return [MonthlySales(dealer_id, month, int(quantity), Money(int(amount)))
                for dealer_id, month, quantity, amount in
                (await self.session.execute(query)).all()]

    async def stream(self, which: FlowRowFilter, limit: int) -> AsyncIterator[list[FlowRow]]:
        result = await self.session.stream_scalars(_flow_query(which).limit(limit))
        async for part in result.partitions(5000):
            yield [_flow_row(row) for row in part]

    async def of_upload(self, upload_id: str) -> list[FlowRow]:
        rows = (await self.session.scalars(select(FlowRowRow).where(
            FlowRowRow.upload_id == upload_id).order_by(FlowRowRow.id))).all()
        return [_flow_row(row) for row in rows]


# ---- diversions -------------------------------------------------------------------


def _diversion(row: DiversionRow) -> Diversion:
    return Diversion(
        id=row.id, upload_id=row.upload_id, row_number=row.row_number,
        selling_dealer_id=row.selling_dealer_id, shipped_dealer_id=row.shipped_dealer_id,
        product_code=row.product_code, gtin=row.gtin, batch=row.batch,
        serials=tuple(s for s in row.serials.split("\n") if s), quantity=row.quantity,
        customer_id=row.customer_id, customer_name=row.customer_name, sold_on=row.sold_on,
        shipment_id=row.shipment_id, ship_date=row.ship_date,
        status=DiversionStatus(row.status), detected_at=aware(row.detected_at),
        resolution_note=row.resolution_note, resolved_by=row.resolved_by,
        resolved_at=aware(row.resolved_at) if row.resolved_at else None)


def _diversion_values(d: Diversion) -> dict:
    return dict(
        upload_id=d.upload_id, row_number=d.row_number, selling_dealer_id=d.selling_dealer_id,
        shipped_dealer_id=d.shipped_dealer_id, product_code=d.product_code, gtin=d.gtin,
        batch=d.batch, serials="\n".join(d.serials), quantity=d.quantity,
        customer_id=d.customer_id, customer_name=d.customer_name, sold_on=d.sold_on,
        shipment_id=d.shipment_id, ship_date=d.ship_date, status=int(d.status),
        detected_at=d.detected_at, resolution_note=d.resolution_note,
        resolved_by=d.resolved_by, resolved_at=d.resolved_at)


class SqlDiversions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int:
        moved = await self.session.execute(update(DiversionRow).where(
            DiversionRow.customer_id == from_id).values(customer_id=to_id, customer_name=to_name))
        return moved.rowcount

    async def add(self, diversion: Diversion) -> None:
        self.session.add(DiversionRow(id=diversion.id, **_diversion_values(diversion)))
        await self.session.flush()

    async def get(self, diversion_id: str) -> Diversion | None:
        row = await self.session.get(DiversionRow, diversion_id, populate_existing=True)
        return _diversion(row) if row else None

    async def open_for(self, selling_dealer_id: str, gtin: str, batch: str,
                       shipped_dealer_id: str) -> Diversion | None:
        row = (await self.session.scalars(select(DiversionRow).where(
            DiversionRow.selling_dealer_id == selling_dealer_id, DiversionRow.gtin == gtin,
            DiversionRow.batch == batch, DiversionRow.shipped_dealer_id == shipped_dealer_id,
            DiversionRow.status == int(DiversionStatus.OPEN)))).first()
        return _diversion(row) if row else None

    async def save(self, diversion: Diversion) -> None:
        await self.session.execute(update(DiversionRow).where(DiversionRow.id == diversion.id)
                                   .values(**_diversion_values(diversion)))

    async def page(self, which: DiversionFilter, page: PageRequest) -> Page[Diversion]:
        query = select(DiversionRow).order_by(DiversionRow.detected_at.desc(), DiversionRow.id)
        if which.shipped_dealer_ids is not None:
            query = query.where(DiversionRow.shipped_dealer_id.in_(which.shipped_dealer_ids))
        for column, value in ((DiversionRow.selling_dealer_id, which.selling_dealer_id),
                              (DiversionRow.shipped_dealer_id, which.shipped_dealer_id),
                              (DiversionRow.gtin, which.gtin), (DiversionRow.batch, which.batch)):
            if value:
                query = query.where(column == value)
        if which.status is not None:
            query = query.where(DiversionRow.status == int(which.status))
        if which.detected_after:
            query = query.where(DiversionRow.detected_at >= which.detected_after)
        if which.detected_before:
            query = query.where(DiversionRow.detected_at < which.detected_before)
        found = await fetch_page(self.session, query, page, count=True, keyset=True)
        return found.map(_diversion)


# ---- projections ------------------------------------------------------------------

PROJECTION_TABLES = {
    "shipments": (ShipmentLineRow, StockRow, ShippedSerialRow),
    "products": (ProductRow,),
    "customers": (CustomerRow,),
    "authorizations": (AuthorizationRow,),
    "dealers": (DealerRow,),
}


def _stock(row) -> StockEntry:
    return StockEntry(row.dealer_id, row.gtin, row.batch, int(row.received), int(row.returned),
                      row.first_reached_on, row.first_shipment_id, row.expiry)


class SqlProjections:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _upsert(self, model, keys: list[str], values: dict) -> None:
        insert = _dialect_insert(self.session)
        statement = insert(model).values(**values)
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}))

    async def upsert_product(self, product: Product) -> None:
        # A GTIN moved to another product code: the old code no longer owns it.
        await self._upsert(ProductRow, ["gtin"], dict(
            gtin=product.gtin, code=product.code, name=product.name,
            product_line=product.product_line, serial_tracked=product.serial_tracked))

    async def products(self) -> list[Product]:
        rows = (await self.session.execute(select(
            ProductRow.code, ProductRow.gtin, ProductRow.name, ProductRow.product_line,
            ProductRow.serial_tracked))).all()
        return [Product(*row) for row in rows]

    async def upsert_customer(self, customer: Customer, at: datetime) -> None:
        await self._upsert(CustomerRow, ["id"], dict(
            id=customer.id, name=customer.name, normalized_name=customer.normalized_name,
            city_code=customer.city_code, aliases=list(customer.aliases),
            departments=list(customer.departments), updated_at=at))

    async def customers_changed_since(self, since: datetime | None) -> list[Customer]:
        query = select(CustomerRow.id, CustomerRow.name, CustomerRow.normalized_name,
                       CustomerRow.city_code, CustomerRow.aliases, CustomerRow.departments,
                       CustomerRow.merged_into)
        if since is not None:
            query = query.where(CustomerRow.updated_at >= since)
        return [Customer(i, n, nn, c, tuple(a or ()), tuple(d or ()), m or "")
                for i, n, nn, c, a, d, m in (await self.session.execute(query)).all()]

    async def merge_customer(self, kept: Customer, merged_id: str, at: datetime) -> None:
        await self.upsert_customer(kept, at)
        await self.session.execute(update(CustomerRow).where(CustomerRow.id == merged_id)
                                   .values(merged_into=kept.id, updated_at=at))
        await self.session.execute(update(AuthorizationRow).where(
            AuthorizationRow.customer_id == merged_id).values(customer_id=kept.id))

    async def upsert_dealer(self, dealer: Dealer) -> None:
        await self._upsert(DealerRow, ["id"], dict(
            id=dealer.id, name=dealer.name, platform_dealer_id=dealer.platform_dealer_id,
            is_platform=dealer.is_platform, division_codes=list(dealer.division_codes),
            city_code=dealer.city_code, region_code=dealer.region_code, active=dealer.active))

    @staticmethod
    def _dealer(row: DealerRow) -> Dealer:
        return Dealer(row.id, row.name, row.platform_dealer_id, row.is_platform,
                      tuple(row.division_codes or ()), row.city_code, row.region_code,
                      row.active)

    async def dealer(self, dealer_id: str) -> Dealer | None:
        row = await self.session.get(DealerRow, dealer_id)
        return self._dealer(row) if row else None

    async def sub_dealers(self, platform_dealer_id: str) -> list[Dealer]:
        rows = (await self.session.scalars(select(DealerRow).where(
            DealerRow.platform_dealer_id == platform_dealer_id))).all()
        return [self._dealer(row) for row in rows]

    async def upsert_authorization(self, a: Authorization) -> None:
        await self._upsert(AuthorizationRow, ["id"], dict(
            id=a.id, dealer_id=a.dealer_id, customer_id=a.customer_id,
            product_line=a.product_line, product_code=a.product_code, department=a.department,
            valid_from=a.valid_from, valid_to=a.valid_to, active=a.active))

    async def authorizations(self, dealer_id: str) -> list[Authorization]:
        rows = (await self.session.scalars(select(AuthorizationRow).where(
            AuthorizationRow.dealer_id == dealer_id, AuthorizationRow.active.is_(True)))).all()
        return [Authorization(r.id, r.dealer_id, r.customer_id, r.product_line, r.product_code,
                              r.department, r.valid_from, r.valid_to, r.active) for r in rows]

    async def add_shipment_lines(self, lines: list[ShipmentLine]) -> int:
        if not lines:
            return 0
        insert = _dialect_insert(self.session)
        keys = [(line.shipment_id, line.line_no) for line in lines]
        known = set()
        for part in _chunks(keys):
            known |= set((await self.session.execute(select(
                ShipmentLineRow.shipment_id, ShipmentLineRow.line_no).where(tuple_(
                    ShipmentLineRow.shipment_id, ShipmentLineRow.line_no).in_(part)))).all())
        fresh = [line for line in lines if (line.shipment_id, line.line_no) not in known]
        if not fresh:
            return 0
        for part in _chunks(fresh, 5000):
            await self.session.execute(ShipmentLineRow.__table__.insert(), [dict(
                shipment_id=x.shipment_id, line_no=x.line_no, dealer_id=x.dealer_id,
                product_code=x.product_code, gtin=x.gtin, batch=x.batch, expiry=x.expiry,
                quantity=x.quantity, received=None, ship_date=x.ship_date, received_on=None)
                for x in part])
        stock: dict[tuple[str, str, str], list] = {}
        for x in fresh:
            key = (x.dealer_id, x.gtin, x.batch)
            entry = stock.get(key)
            if entry is None:
                stock[key] = [x.quantity, x.ship_date, x.shipment_id, x.expiry]
            else:
                entry[0] += x.quantity
                if x.ship_date < entry[1]:
                    entry[1], entry[2] = x.ship_date, x.shipment_id
        table = StockRow.__table__
        statement = insert(StockRow)
        excluded = statement.excluded
        least = func.min if self.session.bind.dialect.name == "sqlite" else func.least
        statement = statement.on_conflict_do_update(
            index_elements=["dealer_id", "gtin", "batch"],
            set_={"received": table.c.received + excluded.received,
                  "first_shipment_id": func.coalesce(
                      _earlier(table.c.first_reached_on, excluded.first_reached_on,
                               excluded.first_shipment_id), table.c.first_shipment_id),
                  "first_reached_on": least(table.c.first_reached_on,
                                            excluded.first_reached_on)})
        for part in _chunks(list(stock.items()), 5000):
            await self.session.execute(statement, [dict(
                dealer_id=d, gtin=g, batch=b, received=q, returned=0, first_reached_on=day,
                first_shipment_id=shipment, expiry=expiry)
                for (d, g, b), (q, day, shipment, expiry) in part])
        serials = [dict(gtin=x.gtin, serial=s, dealer_id=x.dealer_id, batch=x.batch,
                        shipment_id=x.shipment_id, ship_date=x.ship_date)
                   for x in fresh for s in x.serials]
        statement = insert(ShippedSerialRow)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["gtin", "serial"],
            set_={"dealer_id": excluded.dealer_id, "batch": excluded.batch,
                  "shipment_id": excluded.shipment_id, "ship_date": excluded.ship_date})
        for part in _chunks(serials, 5000):
            await self.session.execute(statement, part)
        return len(fresh)

    async def receive(self, shipment_id: str, received: dict[int, int], on: date) -> list[str]:
        rows = (await self.session.scalars(select(ShipmentLineRow).where(
            ShipmentLineRow.shipment_id == shipment_id))).all()
        dealers = []
        for row in rows:
            if row.line_no not in received:
                continue
            before = row.quantity if row.received is None else row.received
            after = received[row.line_no]
            row.received, row.received_on = after, on
            if after != before:
                await self.session.execute(update(StockRow).where(
                    StockRow.dealer_id == row.dealer_id, StockRow.gtin == row.gtin,
                    StockRow.batch == row.batch).values(received=StockRow.received
                                                        + (after - before)))
                dealers.append(row.dealer_id)
        await self.session.flush()
        return dealers

    async def returned(self, dealer_id: str, gtin: str, batch: str, quantity: int,
                       serials: list[str]) -> None:
        await self.session.execute(update(StockRow).where(
            StockRow.dealer_id == dealer_id, StockRow.gtin == gtin, StockRow.batch == batch)
            .values(returned=StockRow.returned + quantity))
        for part in _chunks(serials):
            await self.session.execute(delete(ShippedSerialRow).where(
                ShippedSerialRow.gtin == gtin, ShippedSerialRow.serial.in_(part),
                ShippedSerialRow.dealer_id == dealer_id))

    async def stock(self, dealer_id: str) -> dict[tuple[str, str], StockEntry]:
        rows = (await self.session.execute(select(
            StockRow.dealer_id, StockRow.gtin, StockRow.batch, StockRow.received,
            StockRow.returned, StockRow.first_reached_on, StockRow.first_shipment_id,
            StockRow.expiry).where(StockRow.dealer_id == dealer_id))).all()
        return {(row.gtin, row.batch): _stock(row) for row in rows}

    async def stock_of_batches(self, keys: list[tuple[str, str]]
                               ) -> dict[tuple[str, str], list[StockEntry]]:
        found: dict[tuple[str, str], list[StockEntry]] = defaultdict(list)
        rows = await _rows_for_pairs(
            self.session, "stock", ["dealer_id", "gtin", "batch", "received", "returned",
                                    "first_reached_on", "first_shipment_id", "expiry"],
            "gtin", "batch", keys)
        for dealer_id, gtin, batch, received, returned, first, shipment, expiry in rows:
            found[(gtin, batch)].append(StockEntry(
                dealer_id, gtin, batch, int(received), int(returned), _date(first), shipment,
                _date(expiry)))
        return found

    async def shipped_serials(self, keys: list[tuple[str, str]]
                              ) -> dict[tuple[str, str], ShippedSerial]:
        rows = await _rows_for_pairs(
            self.session, "shipped_serials",
            ["gtin", "serial", "dealer_id", "batch", "shipment_id", "ship_date"],
            "gtin", "serial", keys)
        return {(g, s): ShippedSerial(g, s, d, b, shipment, _date(day))
                for g, s, d, b, shipment, day in rows}

    async def clear(self, projection: str) -> None:
        tables = PROJECTION_TABLES[projection]
        if self.session.bind.dialect.name == "postgresql":
            names = ", ".join(model.__tablename__ for model in tables)
            await self.session.execute(_text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        for model in tables:
            await self.session.execute(delete(model))


def _date(value) -> date | None:
    """Dates from raw SQL: SQLite hands back ISO text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _earlier(current_day, new_day, new_shipment):
    from sqlalchemy import case

    return case((new_day < current_day, new_shipment), else_=None)


def _text(sql: str):
    from sqlalchemy import text

    return text(sql)
