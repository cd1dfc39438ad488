"""The running credit exposure per dealer account (dealer × selling company): what the
dealer owes (invoices − credit notes − payments − rebate credits) and the value of its
open orders, kept in ``credit_exposure`` in the same transaction as every order,
shipment, invoice, payment and credit, so the credit check reads one row instead of
walking every order the dealer ever placed. Each order keeps what it contributes
(``orders.open_value_minor``); a change to an order is applied as the difference.

tests/order/test_credit_exposure.py proves the running figures always equal a
recomputation from the ledger and the orders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import (
    CreditExposureRow,
    DealerAccountRow,
    OrderLineRow,
    OrderRow,
)
from services.order.domain.orders import LineValue, OrderStatus, open_value
from shared.db import dialect_insert

Account = tuple[str, str]  # (dealer id, selling company)


async def add(session: AsyncSession, outstanding: dict[Account, int] | None = None,
              open_orders: dict[Account, int] | None = None) -> None:
    """Add to the accounts' running figures (one upsert for all of them)."""
    outstanding, open_orders = outstanding or {}, open_orders or {}
    rows = [dict(dealer_id=d, selling_company=c, outstanding_minor=outstanding.get((d, c), 0),
                 open_orders_minor=open_orders.get((d, c), 0))
            for d, c in sorted(set(outstanding) | set(open_orders))]
    rows = [r for r in rows if r["outstanding_minor"] or r["open_orders_minor"]]
    if not rows:
        return
    await session.execute(_ADD[session.bind.dialect.name], rows)


async def refresh_orders(session: AsyncSession, order_ids: Iterable[str]) -> None:
    """Recompute what these orders contribute (their lines, their status) and move the
    accounts' open-order figure by the difference. Call after any change to an order's
    status or to its lines' ordered, closed or invoiced quantities."""
    order_ids = sorted(set(order_ids))
    if not order_ids:
        return
    orders = (await session.execute(
        select(OrderRow.id, OrderRow.dealer_id, OrderRow.selling_company, OrderRow.status,
               OrderRow.open_value_minor).where(OrderRow.id.in_(order_ids)))).all()
    lines: dict[str, list[LineValue]] = defaultdict(list)
    for row in (await session.execute(
            select(OrderLineRow.order_id, OrderLineRow.quantity_ordered,
                   OrderLineRow.quantity_closed, OrderLineRow.quantity_invoiced,
                   OrderLineRow.unit_price_minor)
            .where(OrderLineRow.order_id.in_(order_ids)))).all():
        lines[row.order_id].append(LineValue(row.quantity_ordered, row.quantity_closed,
                                             row.quantity_invoiced, row.unit_price_minor))
    changed, deltas = [], defaultdict(int)
    for order in orders:
        value = open_value(OrderStatus(order.status), lines[order.id])
        if value != order.open_value_minor:
            changed.append(dict(i=order.id, v=value))
            deltas[(order.dealer_id, order.selling_company)] += value - order.open_value_minor
    if changed:
        table = OrderRow.__table__
        await session.execute(update(table).where(table.c.id == bindparam("i"))
                              .values(open_value_minor=bindparam("v")), changed)
        await add(session, open_orders=deltas)


async def figures(session: AsyncSession, dealer_id: str, company: str, *,
                  lock: bool = False) -> tuple[int, int, int]:
    """(outstanding, open orders, credit limit) of one account in one statement. With
    ``lock`` on PostgreSQL the account's exposure row stays locked until commit, so two
    submissions cannot both spend the same headroom (SQLite's writers already take
    turns)."""
    exposure = CreditExposureRow
    if lock and session.bind.dialect.name != "sqlite":
        await session.execute(dialect_insert(session, exposure.__table__).values(
            dealer_id=dealer_id, selling_company=company, outstanding_minor=0,
            open_orders_minor=0).on_conflict_do_nothing())
        await session.execute(select(exposure.dealer_id).where(
            exposure.dealer_id == dealer_id, exposure.selling_company == company)
            .with_for_update())
    row = (await session.execute(FIGURES, {"dealer": dealer_id, "company": company})).one()
    return int(row[0]), int(row[1]), int(row[2])


def _figures_statement():
    """One row even for an account with no exposure yet or no limit (zeros)."""
    dealer, company = bindparam("dealer"), bindparam("company")
    exposure, account = CreditExposureRow, DealerAccountRow

    def one(column, table):
        return func.coalesce(select(column).where(
            table.dealer_id == dealer, table.selling_company == company).scalar_subquery(), 0)

    return select(one(exposure.outstanding_minor, exposure),
                  one(exposure.open_orders_minor, exposure),
                  one(account.credit_limit_minor, account))


def _add_statement(dialect):
    table = CreditExposureRow.__table__
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.dealer_id, table.c.selling_company],
        set_=dict(outstanding_minor=table.c.outstanding_minor
                  + statement.excluded.outstanding_minor,
                  open_orders_minor=table.c.open_orders_minor
                  + statement.excluded.open_orders_minor))


# Built once: the credit check and the upsert run on every order submission (building
# the upsert cost more than executing it).
FIGURES = _figures_statement()
_ADD = {"sqlite": _add_statement(sqlite), "postgresql": _add_statement(postgresql)}
