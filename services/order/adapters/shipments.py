"""Shipments over SQL: what is recorded (header and line digests, for idempotent
re-pushes), recording a push, reading shipments, which order line a shipment line
shipped; receipts and their discrepancies."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import (
    DiscrepancyRow,
    ReceiptRow,
    ShipmentLineRow,
    ShipmentRow,
    of_dealers,
    to_domain,
)
from services.order.domain.fulfilment import (
    OPEN,
    Discrepancy,
    DiscrepancyQuery,
    Receipt,
    Shipment,
    ShipmentLine,
    ShipmentQuery,
)
from services.order.domain.ingest import RecordedShipment
from shared.db import fetch_page
from shared.pagination import Page, PageRequest


def _line(row: ShipmentLineRow) -> ShipmentLine:
    return to_domain(ShipmentLine, row, serials=tuple(s for s in row.serials.split("\n") if s))

SHIPMENT_LINE_COLUMNS = (
    "shipment_id", "line_no", "order_id", "order_line_no", "product_code", "gtin", "batch",
    "expiry_date", "production_date", "serials", "quantity", "content_hash",
    "quantity_received", "quantity_damaged", "receipt_note")


def _line_insert(dialect: str) -> str:
    columns = SHIPMENT_LINE_COLUMNS
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in columns)
    else:  # asyncpg's numeric placeholders
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO shipment_lines ({', '.join(columns)}) VALUES ({marks})"


class SqlShipments:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _lines(self, shipment_id: str) -> list[ShipmentLine]:
        return [_line(row) for row in (await self.session.scalars(
            select(ShipmentLineRow).where(ShipmentLineRow.shipment_id == shipment_id)
            .order_by(ShipmentLineRow.line_no))).all()]

    async def _shipment(self, row: ShipmentRow) -> Shipment:
        return to_domain(Shipment, row, received=bool(row.received),
                         lines=await self._lines(row.id))

    async def get(self, shipment_id: str) -> Shipment | None:
        row = await self.session.get(ShipmentRow, shipment_id, populate_existing=True)
        return None if row is None else await self._shipment(row)

    async def page(self, query: ShipmentQuery, page: PageRequest) -> Page[Shipment]:
        statement = select(ShipmentRow).order_by(ShipmentRow.ship_date.desc(), ShipmentRow.id)
        statement = of_dealers(statement, ShipmentRow.dealer_id, query)
        if query.order_id:
            statement = statement.where(ShipmentRow.id.in_(
                select(ShipmentLineRow.shipment_id)
                .where(ShipmentLineRow.order_id == query.order_id)))
        if query.shipped_from:
            statement = statement.where(ShipmentRow.ship_date >= query.shipped_from)
        if query.shipped_to:
            statement = statement.where(ShipmentRow.ship_date <= query.shipped_to)
        if query.unreceived_only:
            statement = statement.where(ShipmentRow.received.is_(False))
        found = await fetch_page(self.session, statement, page, count=True)
        return Page([await self._shipment(row) for row in found.items], found.next_token,
                    found.total)

    async def save_receipt(self, shipment: Shipment) -> None:
        table = ShipmentLineRow.__table__
        await self.session.execute(
            update(table)
            .where(table.c.shipment_id == bindparam("s"), table.c.line_no == bindparam("n"))
            .values(quantity_received=bindparam("r"), quantity_damaged=bindparam("d"),
                    receipt_note=bindparam("t")),
            [dict(s=shipment.id, n=line.line_no, r=line.quantity_received,
                  d=line.quantity_damaged, t=line.receipt_note) for line in shipment.lines])
        await self.session.execute(
            update(ShipmentRow).where(ShipmentRow.id == shipment.id).values(received=True)
            .execution_options(synchronize_session=False))

    async def lines_of_batch(self, shipment_id: str, dealer_id: str, product_code: str,
                             batch: str) -> list[ShipmentLine]:
        return [_line(row) for row in (await self.session.scalars(
            select(ShipmentLineRow)
            .join(ShipmentRow, ShipmentRow.id == ShipmentLineRow.shipment_id)
            .where(ShipmentLineRow.shipment_id == shipment_id,
                   ShipmentRow.dealer_id == dealer_id,
                   ShipmentLineRow.product_code == product_code,
                   ShipmentLineRow.batch == batch)
            .order_by(ShipmentLineRow.line_no))).all()]

    async def header_digests(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return dict((await self.session.execute(
            select(ShipmentRow.id, ShipmentRow.header_hash)
            .where(ShipmentRow.id.in_(list(shipment_ids))))).all())

    async def line_digests(self, shipment_ids: Iterable[str]) -> dict[tuple[str, int], str]:
        return {(shipment_id, line_no): digest for shipment_id, line_no, digest in (
            await self.session.execute(
                select(ShipmentLineRow.shipment_id, ShipmentLineRow.line_no,
                       ShipmentLineRow.content_hash)
                .where(ShipmentLineRow.shipment_id.in_(list(shipment_ids))))).all()}

    async def add(self, shipments: list[RecordedShipment], moment: datetime) -> None:
        headers = [
            dict(id=s.shipment_id, dealer_id=s.dealer_id, selling_company=s.selling_company,
                 ship_date=s.ship_date, carrier=s.carrier, waybill_no=s.waybill_no,
                 header_hash=s.header_hash, recorded_at=moment, received=False)
            for s in (r.shipment for r in shipments if r.new)]
        if headers:
            await self.session.execute(insert(ShipmentRow.__table__), headers)
        rows = []
        append = rows.append
        for recorded in shipments:
            shipment_id = recorded.shipment.shipment_id
            for stored in recorded.lines:
                line = stored.line
                append((shipment_id, line.line_no, line.order_id, line.order_line_no,
                        line.product_code, stored.gtin, line.batch, line.expiry_date,
                        line.production_date,
                        "\n".join(line.serials) if line.serials else "", line.quantity,
                        line.content_hash, 0, 0, ""))
        if not rows:
            return
        # The hot insert goes straight to the driver's executemany (rows as tuples), which
        # skips SQLAlchemy's per-row parameter processing; the statement is plain SQL.
        connection = await self.session.connection()
        await connection.exec_driver_sql(_line_insert(self.session.bind.dialect.name), rows)

    async def dealers(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        return dict((await self.session.execute(
            select(ShipmentRow.id, ShipmentRow.dealer_id)
            .where(ShipmentRow.id.in_(list(shipment_ids))))).all())

    async def order_line_of(self, shipment_id: str, line_no: int) -> tuple[str, int] | None:
        target = (await self.session.execute(
            select(ShipmentLineRow.order_id, ShipmentLineRow.order_line_no)
            .where(ShipmentLineRow.shipment_id == shipment_id,
                   ShipmentLineRow.line_no == line_no))).first()
        return None if target is None else (target.order_id, target.order_line_no)


class SqlReceipts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, shipment_id: str) -> bool:
        return await self.session.scalar(select(ReceiptRow.id).where(
            ReceiptRow.shipment_id == shipment_id)) is not None

    async def add(self, receipt: Receipt) -> None:
        self.session.add(ReceiptRow(
            id=receipt.id, shipment_id=receipt.shipment_id, dealer_id=receipt.dealer_id,
            confirmed_at=receipt.confirmed_at, confirmed_by=receipt.confirmed_by))
        self.session.add_all(DiscrepancyRow(**vars(d)) for d in receipt.discrepancies)
        await self.session.flush()


class SqlDiscrepancies:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, discrepancy_id: str) -> Discrepancy | None:
        row = await self.session.get(DiscrepancyRow, discrepancy_id, populate_existing=True)
        return None if row is None else to_domain(Discrepancy, row)

    async def resolve(self, resolved: Discrepancy) -> bool:
        result = await self.session.execute(
            update(DiscrepancyRow)
            .where(DiscrepancyRow.id == resolved.id, DiscrepancyRow.status == OPEN)
            .values(status=resolved.status, resolution=resolved.resolution,
                    resolved_at=resolved.resolved_at, resolved_by=resolved.resolved_by,
                    note=resolved.note)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def page(self, query: DiscrepancyQuery, page: PageRequest) -> Page[Discrepancy]:
        statement = select(DiscrepancyRow).order_by(DiscrepancyRow.raised_at.desc(),
                                                    DiscrepancyRow.id)
        statement = of_dealers(statement, DiscrepancyRow.dealer_id, query)
        if query.shipment_id:
            statement = statement.where(DiscrepancyRow.shipment_id == query.shipment_id)
        if query.status:
            statement = statement.where(DiscrepancyRow.status == query.status)
        return (await fetch_page(self.session, statement, page, count=True)).map(
            lambda row: to_domain(Discrepancy, row))
