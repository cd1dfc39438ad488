"""Dashboard figures computed where the facts live: approved orders per dealer × month
and channel inventory per product, within the caller's scope (a dealer sees its own, a
channel manager its dealers, HQ all)."""

from __future__ import annotations

import re

from services.order.domain.inventory import ProductStock
from services.order.domain.orders import DealerMonthOrders
from services.order.usecases.common import visible
from services.order.usecases.ports import OrderUnitOfWork
from shared.context import Principal
from shared.errors import InvalidArgument
from shared.scope import Scopes

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(value: str, field: str) -> str:
    """A "YYYY-MM" bound, or the field named in the error."""
    if value and not MONTH.match(value):
        raise InvalidArgument.field(field, f"expected YYYY-MM, got {value!r}")
    return value


async def order_stats(dealer_id: str, from_month: str, to_month: str, *, who: Principal,
                      uow: OrderUnitOfWork, scopes: Scopes) -> list[DealerMonthOrders]:
    first, last = _month(from_month, "from_month"), _month(to_month, "to_month")
    dealers = visible(await scopes.resolve(who, "order.read"), dealer_id)
    if dealers is not None and not dealers:
        return []
    async with uow.read():
        return await uow.stats.orders_by_month(dealers, first, last)


async def channel_inventory_stats(dealer_id: str, product_line: str, by_dealer: bool, *,
                                  who: Principal, uow: OrderUnitOfWork,
                                  scopes: Scopes) -> list[ProductStock]:
    dealers = visible(await scopes.resolve(who, "order.read"), dealer_id)
    if dealers is not None and not dealers:
        return []
    async with uow.read():
        return await uow.stats.inventory(dealers, product_line, by_dealer)
