"""Product returns over SQL, and what a dealer has of a batch as far as returns are
concerned (received, claimed by open returns, the serials shipped and claimed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import (
    ChannelInventoryRow,
    ProductRow,
    ReturnLineRow,
    ReturnRow,
    ShipmentLineRow,
    ShipmentRow,
    of_dealers,
    to_domain,
)
from services.order.domain.ingest import ReturnToCredit
from services.order.domain.returns import (
    OPEN_OR_DONE,
    BatchStock,
    ProductReturn,
    ReturnLine,
    ReturnLineInput,
    ReturnQuery,
    ReturnRepeated,
    ReturnStatus,
)
from shared.db import fetch_page
from shared.pagination import Page, PageRequest


def _return(row: ReturnRow) -> ProductReturn:
    return to_domain(ProductReturn, row, status=ReturnStatus(row.status), lines=[
        to_domain(ReturnLine, line, serials=tuple(s for s in line.serials.split("\n") if s))
        for line in row.lines])


class SqlReturns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]:
        return {row.id: ReturnToCredit(row.id, row.dealer_id, row.status)
                for row in (await self.session.execute(
                    select(ReturnRow.id, ReturnRow.dealer_id, ReturnRow.status)
                    .where(ReturnRow.id.in_(list(return_ids))))).all()}

    async def mark_credited(self, return_id: str, invoice_id: str) -> None:
        await self.session.execute(
            update(ReturnRow).where(ReturnRow.id == return_id)
            .values(status=ReturnStatus.CREDITED, credit_note_invoice_id=invoice_id)
            .execution_options(synchronize_session=False))

    async def get(self, return_id: str, *,
                  for_update: bool = False) -> ProductReturn | None:
        row = await self.session.get(ReturnRow, return_id, populate_existing=True,
                                     with_for_update=for_update or None)
        return None if row is None else _return(row)

    async def by_request(self, dealer_id: str,
                         client_request_id: str) -> ProductReturn | None:
        row = (await self.session.scalars(select(ReturnRow).where(
            ReturnRow.dealer_id == dealer_id,
            ReturnRow.client_request_id == client_request_id))).first()
        return None if row is None else _return(row)

    async def add(self, product_return: ProductReturn) -> None:
        values = asdict(product_return)
        del values["lines"]
        self.session.add(ReturnRow(**values, lines=[
            ReturnLineRow(**{**asdict(line), "serials": "\n".join(line.serials)})
            for line in product_return.lines]))
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ReturnRepeated(product_return.client_request_id) from exc

    async def decide(self, decided: ProductReturn) -> bool:
        result = await self.session.execute(
            update(ReturnRow)
            .where(ReturnRow.id == decided.id, ReturnRow.status == ReturnStatus.REQUESTED)
            .values(status=decided.status, decided_at=decided.decided_at,
                    decided_by=decided.decided_by, decision_note=decided.decision_note)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def save(self, product_return: ProductReturn) -> None:
        await self.session.execute(
            update(ReturnRow).where(ReturnRow.id == product_return.id)
            .values(status=product_return.status, received_on=product_return.received_on)
            .execution_options(synchronize_session=False))
        table = ReturnLineRow.__table__
        await self.session.execute(
            update(table)
            .where(table.c.return_id == bindparam("i"), table.c.line_no == bindparam("n"))
            .values(quantity_received=bindparam("q")),
            [dict(i=product_return.id, n=line.line_no, q=line.quantity_received)
             for line in product_return.lines])

    async def batch_stock(self, dealer_id: str, lines: list[ReturnLineInput]
                          ) -> dict[tuple[str, str], BatchStock]:
        session = self.session
        keys = {(line.product_code, line.batch) for line in lines}
        codes = {code for code, _ in keys}
        inventory = {(r.product_code, r.batch): r for r in (await session.scalars(
            select(ChannelInventoryRow).where(ChannelInventoryRow.dealer_id == dealer_id,
                                              ChannelInventoryRow.product_code.in_(codes))
            .with_for_update())).all()}
        tracked = dict((await session.execute(
            select(ProductRow.code, ProductRow.serial_tracked)
            .where(ProductRow.code.in_(codes)))).all())
        shipped_serials: dict[tuple[str, str], set[str]] = defaultdict(set)
        for code, batch, serials in (await session.execute(
                select(ShipmentLineRow.product_code, ShipmentLineRow.batch,
                       ShipmentLineRow.serials)
                .join(ShipmentRow, ShipmentRow.id == ShipmentLineRow.shipment_id)
                .where(ShipmentRow.dealer_id == dealer_id,
                       ShipmentLineRow.product_code.in_(codes),
                       ShipmentLineRow.serials != ""))).all():
            shipped_serials[(code, batch)].update(s for s in serials.split("\n") if s)
        claimed: dict[tuple[str, str], int] = defaultdict(int)
        claimed_serials: dict[tuple[str, str], set[str]] = defaultdict(set)
        for line in (await session.execute(
                select(ReturnLineRow.product_code, ReturnLineRow.batch,
                       ReturnLineRow.quantity_requested, ReturnLineRow.serials,
                       ReturnRow.status)
                .join(ReturnRow, ReturnRow.id == ReturnLineRow.return_id)
                .where(ReturnRow.dealer_id == dealer_id,
                       ReturnRow.status.in_([int(s) for s in OPEN_OR_DONE]),
                       ReturnLineRow.product_code.in_(codes)))).all():
            key = (line.product_code, line.batch)
            # Received returns are already in the inventory's returned count.
            if line.status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
                claimed[key] += line.quantity_requested
            claimed_serials[key].update(s for s in line.serials.split("\n") if s)
        stock = {}
        for key in keys:
            row = inventory.get(key)
            if row is None:
                continue
            stock[key] = BatchStock(
                received=row.quantity_received - row.quantity_sold - row.quantity_returned,
                claimed=claimed[key], shipped_serials=frozenset(shipped_serials[key]),
                claimed_serials=frozenset(claimed_serials[key]),
                serial_tracked=bool(tracked.get(key[0])))
        return stock

    async def page(self, query: ReturnQuery, page: PageRequest) -> Page[ProductReturn]:
        statement = select(ReturnRow).order_by(ReturnRow.requested_at.desc(), ReturnRow.id)
        statement = of_dealers(statement, ReturnRow.dealer_id, query)
        if query.statuses:
            statement = statement.where(ReturnRow.status.in_(list(query.statuses)))
        return (await fetch_page(self.session, statement, page, count=True)).map(_return)
