"""Dashboard figures computed where the facts live: approved orders per dealer × month
and channel inventory per product, summed in SQL within the caller's scope (a dealer
sees its own, a channel manager its dealers, HQ all)."""

from __future__ import annotations

import re

from qudao.common.v1 import money_pb2
from qudao.order.v1 import order_pb2
from sqlalchemy import distinct, func, literal_column, select

from services.order.adapters.orm import ChannelInventoryRow, OrderRow, ProductRow
from services.order.domain.orders import OrderStatus
from services.order.usecases.common import UseCaseBase
from shared.errors import InvalidArgument
from shared.scope import Scope

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(value: str, field: str) -> str:
    """A "YYYY-MM" bound, or the field named in the error."""
    if value and not MONTH.match(value):
        raise InvalidArgument.field(field, f"expected YYYY-MM, got {value!r}")
    return value


def _scoped(query, column, dealer_id: str, scope: Scope):
    """The query kept to the dealers in scope (to one of them when ``dealer_id`` names
    it); None when it names a dealer out of scope."""
    if dealer_id:
        return query.where(column == dealer_id) if scope.allows(dealer_id) else None
    return query if scope.all_dealers else query.where(column.in_(scope.dealer_ids))


class StatsUseCases(UseCaseBase):
    def _month_of(self, column):
        """The UTC month ("YYYY-MM") of a timestamp column, in this database's dialect."""
        if self.db.is_sqlite:
            return func.strftime("%Y-%m", column)
        return func.to_char(func.timezone(literal_column("'UTC'"), column), "YYYY-MM")

    async def order_stats(self, request: order_pb2.GetOrderStatsRequest
                          ) -> list[order_pb2.DealerMonthOrders]:
        first = _month(request.from_month, "from_month")
        last = _month(request.to_month, "to_month")
        scope = await self.scope("order.read")
        month = self._month_of(OrderRow.submitted_at).label("month")
        query = (select(OrderRow.dealer_id, month, func.count().label("orders"),
                        func.sum(OrderRow.total_minor).label("amount"))
                 .where(OrderRow.decision == OrderStatus.APPROVED.value)
                 .group_by(OrderRow.dealer_id, month).order_by(month, OrderRow.dealer_id))
        query = _scoped(query, OrderRow.dealer_id, request.dealer_id, scope)
        if query is None:
            return []
        if first:
            query = query.having(month >= first)
        if last:
            query = query.having(month <= last)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [order_pb2.DealerMonthOrders(
            dealer_id=row.dealer_id, month=row.month, order_count=row.orders,
            order_amount=money_pb2.Money(amount_minor=int(row.amount or 0),
                                         currency=self.currency)) for row in rows]

    async def channel_inventory_stats(self, request: order_pb2.GetChannelInventoryStatsRequest
                                      ) -> list[order_pb2.ProductInventory]:
        scope = await self.scope("order.read")
        stock = ChannelInventoryRow
        keys = [stock.product_code, ProductRow.name, stock.product_line]
        dealer = stock.dealer_id if request.by_dealer else literal_column("''")
        keys += [stock.dealer_id] if request.by_dealer else []
        query = (select(*keys, dealer.label("dealer"),
                        func.sum(stock.quantity_received).label("received"),
                        func.sum(stock.quantity_sold).label("sold"),
                        func.sum(stock.quantity_returned).label("returned"),
                        func.count(distinct(stock.dealer_id)).label("dealers"))
                 .join(ProductRow, ProductRow.code == stock.product_code, isouter=True)
                 .group_by(*keys).order_by(*keys))
        query = _scoped(query, stock.dealer_id, request.dealer_id, scope)
        if query is None:
            return []
        if request.product_line:
            query = query.where(stock.product_line == request.product_line)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [order_pb2.ProductInventory(
            product_code=row.product_code, product_name=row.name or "",
            product_line=row.product_line, quantity_received=int(row.received or 0),
            quantity_sold=int(row.sold or 0), quantity_returned=int(row.returned or 0),
            quantity_on_hand=int((row.received or 0) - (row.sold or 0) - (row.returned or 0)),
            dealer_count=row.dealers, dealer_id=row.dealer) for row in rows]
