"""The dashboards' figures summed in SQL. The month of a timestamp is spelled by the
dialect (strftime on SQLite, to_char in UTC on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import ChannelInventoryRow, OrderRow, ProductRow
from services.order.domain.inventory import ProductStock
from services.order.domain.orders import DealerMonthOrders, OrderStatus


class SqlStats:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _month_of(self, column):
        """The UTC month ("YYYY-MM") of a timestamp column."""
        if self.session.bind.dialect.name == "sqlite":
            return func.strftime("%Y-%m", column)
        return func.to_char(func.timezone(literal_column("'UTC'"), column), "YYYY-MM")

    async def orders_by_month(self, dealer_ids: frozenset[str] | None, first: str,
                              last: str) -> list[DealerMonthOrders]:
        month = self._month_of(OrderRow.submitted_at).label("month")
        query = (select(OrderRow.dealer_id, month, func.count().label("orders"),
                        func.sum(OrderRow.total_minor).label("amount"))
                 .where(OrderRow.decision == OrderStatus.APPROVED.value)
                 .group_by(OrderRow.dealer_id, month).order_by(month, OrderRow.dealer_id))
        if dealer_ids is not None:
            query = query.where(OrderRow.dealer_id.in_(dealer_ids))
        if first:
            query = query.having(month >= first)
        if last:
            query = query.having(month <= last)
        return [DealerMonthOrders(row.dealer_id, row.month, row.orders, int(row.amount or 0))
                for row in (await self.session.execute(query)).all()]

    async def inventory(self, dealer_ids: frozenset[str] | None, product_line: str,
                        by_dealer: bool) -> list[ProductStock]:
        stock = ChannelInventoryRow
        keys = [stock.product_code, ProductRow.name, stock.product_line]
        dealer = stock.dealer_id if by_dealer else literal_column("''")
        keys += [stock.dealer_id] if by_dealer else []
        query = (select(*keys, dealer.label("dealer"),
                        func.sum(stock.quantity_received).label("received"),
                        func.sum(stock.quantity_sold).label("sold"),
                        func.sum(stock.quantity_returned).label("returned"),
                        func.count(distinct(stock.dealer_id)).label("dealers"))
                 .join(ProductRow, ProductRow.code == stock.product_code, isouter=True)
                 .group_by(*keys).order_by(*keys))
        if dealer_ids is not None:
            query = query.where(stock.dealer_id.in_(dealer_ids))
        if product_line:
            query = query.where(stock.product_line == product_line)
        return [ProductStock(row.product_code, row.name or "", row.product_line, row.dealer,
                             int(row.received or 0), int(row.sold or 0),
                             int(row.returned or 0), row.dealers)
                for row in (await self.session.execute(query)).all()]
