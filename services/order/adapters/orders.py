"""Orders and the catalog over SQL. Quantities move with UPDATE … SET q = q + :n (one
executemany), so concurrent writers add up instead of overwriting one another."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters import exposure
from services.order.adapters.orm import OrderLineRow, OrderRow, ProductRow
from services.order.domain.ingest import OrderLineState, OrderShipping, ProductIdentity
from services.order.domain.orders import OrderStatus


class SqlOrders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def shipping(self, order_ids: Iterable[str]) -> tuple[
            dict[str, OrderShipping], dict[tuple[str, int], OrderLineState]]:
        order_ids = list(order_ids)
        orders = {row.id: OrderShipping(row.id, row.dealer_id, row.decision, row.status)
                  for row in (await self.session.execute(
                      select(OrderRow.id, OrderRow.dealer_id, OrderRow.decision,
                             OrderRow.status)
                      .where(OrderRow.id.in_(order_ids)).with_for_update())).all()}
        states = {}
        for row in (await self.session.execute(
                select(OrderLineRow.order_id, OrderLineRow.line_no, OrderLineRow.product_code,
                       OrderLineRow.gtin, OrderLineRow.quantity_ordered,
                       OrderLineRow.quantity_shipped, OrderLineRow.quantity_closed)
                .where(OrderLineRow.order_id.in_(order_ids)))).all():
            order = orders[row.order_id]
            states[(row.order_id, row.line_no)] = OrderLineState(
                row.order_id, row.line_no, order.dealer_id,
                order.decision == OrderStatus.APPROVED, row.product_code, row.gtin,
                row.quantity_ordered, row.quantity_shipped, row.quantity_closed)
        return orders, states

    async def add_shipped(self, quantities: dict[tuple[str, int], int]) -> None:
        if not quantities:
            return
        table = OrderLineRow.__table__
        await self.session.execute(
            update(table)
            .where(table.c.order_id == bindparam("o"), table.c.line_no == bindparam("n"))
            .values(quantity_shipped=table.c.quantity_shipped + bindparam("q")),
            [dict(o=o, n=n, q=q) for (o, n), q in quantities.items()])

    async def set_statuses(self, statuses: dict[str, OrderStatus], moment: datetime) -> None:
        table = OrderRow.__table__
        await self.session.execute(
            update(table).where(table.c.id == bindparam("i"))
            .values(status=bindparam("s"), updated_at=bindparam("u")),
            [dict(i=order_id, s=status.value, u=moment)
             for order_id, status in statuses.items()])

    async def add_invoiced(self, order_id: str, line_no: int, quantity: int) -> None:
        await self.session.execute(
            update(OrderLineRow)
            .where(OrderLineRow.order_id == order_id, OrderLineRow.line_no == line_no)
            .values(quantity_invoiced=OrderLineRow.quantity_invoiced + quantity))

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        await exposure.refresh_orders(self.session, order_ids)


class SqlProducts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        return [ProductIdentity(p.code, p.gtin, p.product_line) for p in (
            await self.session.execute(
                select(ProductRow.code, ProductRow.gtin, ProductRow.product_line)
                .where(or_(ProductRow.code.in_(list(codes)),
                           ProductRow.gtin.in_(list(gtins)))))).all()]
