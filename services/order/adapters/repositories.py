"""The order repositories over SQL for the use cases written as handlers: domain objects
in, domain objects out. Upserts are ``INSERT … ON CONFLICT``, spelled by the dialect in
use; a part recorded twice is the primary key refusing it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import (
    ChannelInventoryRow,
    FlowPartRow,
    FlowStockMoveRow,
    FlowSupersededRow,
)
from services.order.domain.inventory import Stock, StockKey, StockMove


def dialect_insert(session: AsyncSession, table):
    """An INSERT that can say ON CONFLICT, in the session's dialect."""
    if session.bind.dialect.name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


class SqlStock:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        rows = [dict(dealer_id=m.key.dealer_id, product_code=m.key.product_code,
                     batch=m.key.batch, gtin=m.gtin, product_line=m.product_line,
                     expiry_date=m.expiry_date, quantity_received=m.received,
                     quantity_sold=m.sold, quantity_returned=0, updated_at=moment)
                for m in moves if m.received or m.sold]
        if not rows:
            return
        table = ChannelInventoryRow.__table__
        statement = dialect_insert(self.session, table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.dealer_id, table.c.product_code, table.c.batch],
            set_=dict(quantity_received=table.c.quantity_received
                      + statement.excluded.quantity_received,
                      quantity_sold=table.c.quantity_sold + statement.excluded.quantity_sold,
                      updated_at=statement.excluded.updated_at))
        await self.session.execute(statement, rows)

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]:
        keys = list(keys)
        if not keys:
            return {}
        table = ChannelInventoryRow
        rows = (await self.session.scalars(select(table).where(or_(*(
            and_(table.dealer_id == k.dealer_id, table.product_code == k.product_code,
                 table.batch == k.batch) for k in keys))))).all()
        return {StockKey(r.dealer_id, r.product_code, r.batch): Stock(
            StockKey(r.dealer_id, r.product_code, r.batch), r.gtin, r.product_line,
            r.expiry_date, r.quantity_received, r.quantity_sold, r.quantity_returned)
            for r in rows}


class SqlAcceptedFlow:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_part(self, upload_id: str, part_index: int, dealer_id: str,
                          moves: list[StockMove], moment: datetime) -> bool:
        statement = dialect_insert(self.session, FlowPartRow.__table__).values(
            upload_id=upload_id, part_index=part_index, dealer_id=dealer_id,
            applied_at=moment, undone_at=None).on_conflict_do_nothing()
        if (await self.session.execute(statement)).rowcount != 1:
            return False
        if moves:
            await self.session.execute(insert(FlowStockMoveRow.__table__), [
                dict(upload_id=upload_id, part_index=part_index, dealer_id=m.key.dealer_id,
                     product_code=m.key.product_code, batch=m.key.batch, gtin=m.gtin,
                     product_line=m.product_line, expiry_date=m.expiry_date,
                     received=m.received, sold=m.sold) for m in moves])
        return True

    async def is_superseded(self, upload_id: str) -> bool:
        return await self.session.scalar(select(FlowSupersededRow.upload_id).where(
            FlowSupersededRow.upload_id == upload_id)) is not None

    async def supersede(self, upload_id: str, superseded_by: str,
                        moment: datetime) -> list[StockMove]:
        statement = dialect_insert(self.session, FlowSupersededRow.__table__).values(
            upload_id=upload_id, superseded_by=superseded_by,
            superseded_at=moment).on_conflict_do_nothing()
        if (await self.session.execute(statement)).rowcount != 1:
            return []
        parts = [index for (index,) in (await self.session.execute(
            update(FlowPartRow)
            .where(FlowPartRow.upload_id == upload_id, FlowPartRow.undone_at.is_(None))
            .values(undone_at=moment).returning(FlowPartRow.part_index))).all()]
        if not parts:
            return []
        rows = (await self.session.scalars(select(FlowStockMoveRow).where(
            FlowStockMoveRow.upload_id == upload_id,
            FlowStockMoveRow.part_index.in_(parts)))).all()
        return [StockMove(StockKey(r.dealer_id, r.product_code, r.batch), r.gtin,
                          r.product_line, r.expiry_date, r.received, r.sold) for r in rows]
