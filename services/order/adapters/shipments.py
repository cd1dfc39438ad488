"""Shipments over SQL: what is recorded (header and line digests, for idempotent
re-pushes), recording a push, and which order line a shipment line shipped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import ShipmentLineRow, ShipmentRow
from services.order.domain.ingest import RecordedShipment

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
