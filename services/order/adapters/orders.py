"""Orders, the catalog and price lists over SQL. Quantities move with UPDATE … SET
q = q + :n, so concurrent writers add up instead of overwriting one another; decisions
and cancellations are UPDATEs conditional on the state they expect (one racer wins).
``for_update`` is ``SELECT … FOR UPDATE`` (SQLite's write transactions hold the database
lock from their start, so SQLAlchemy leaves it out there)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters import catalog, exposure
from services.order.adapters.orm import (
    OrderApprovalRow,
    OrderLineRow,
    OrderRow,
    PriceListItemRow,
    PriceListRow,
    ProductRow,
    of_dealers,
    to_domain,
)
from services.order.domain.ingest import OrderLineState, OrderShipping, ProductIdentity
from services.order.domain.orders import (
    Approval,
    CatalogEntry,
    GtinTaken,
    Order,
    OrderLine,
    OrderQuery,
    OrderStatus,
    PriceItem,
    PriceList,
    PriceListQuery,
    Product,
    RefTaken,
    Stage,
)
from shared.db import fetch_page
from shared.money import Money
from shared.pagination import Page, PageRequest

# Built once: pricing runs on every order submission. The products with, where the
# tier's list valid on the day names them, its price: one statement for both.
_LIST_OF_TIER = (
    select(PriceListRow.id)
    .where(PriceListRow.tier == bindparam("tier"),
           PriceListRow.selling_company == bindparam("company"),
           PriceListRow.valid_from <= bindparam("on"),
           or_(PriceListRow.valid_to == "", PriceListRow.valid_to >= bindparam("on")))
    .order_by(PriceListRow.valid_from.desc()).limit(1).scalar_subquery())
PRICED_PRODUCTS = (
    select(ProductRow.code, ProductRow.gtin, ProductRow.product_line,
           ProductRow.list_price_minor, ProductRow.currency,
           PriceListItemRow.unit_price_minor,
           PriceListItemRow.currency.label("price_currency"))
    .outerjoin(PriceListItemRow, and_(PriceListItemRow.product_code == ProductRow.code,
                                      PriceListItemRow.price_list_id == _LIST_OF_TIER))
    .where(ProductRow.code.in_(bindparam("codes", expanding=True))))


def _order(row: OrderRow) -> Order:
    return to_domain(
        Order, row, decision=OrderStatus(row.decision), status=OrderStatus(row.status),
        lines=[to_domain(OrderLine, line) for line in row.lines],
        approvals=[to_domain(Approval, approval) for approval in row.approvals])


_ORDER_FIELDS = tuple(f.name for f in fields(Order) if f.name not in ("lines", "approvals"))
_LINE_FIELDS = tuple(f.name for f in fields(OrderLine))
_APPROVAL_FIELDS = tuple(f.name for f in fields(Approval))
_INSERT_ORDER = insert(OrderRow.__table__)
_INSERT_LINE = insert(OrderLineRow.__table__)
_INSERT_APPROVAL = insert(OrderApprovalRow.__table__)


def _columns(item, names: tuple[str, ...]) -> dict:
    """A dataclass's fields as a row (``asdict`` also deep-copies, which costs)."""
    return {name: getattr(item, name) for name in names}


class SqlOrders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        row = await self.session.get(OrderRow, order_id, populate_existing=True,
                                     with_for_update=for_update or None)
        return None if row is None else _order(row)

    async def by_ref(self, dealer_id: str, client_order_ref: str) -> Order | None:
        row = (await self.session.scalars(select(OrderRow).where(
            OrderRow.dealer_id == dealer_id,
            OrderRow.client_order_ref == client_order_ref))).first()
        return None if row is None else _order(row)

    async def add(self, order: Order) -> None:
        # Core inserts: the ORM's unit of work cost more CPU than the statements.
        try:
            await self.session.execute(_INSERT_ORDER, _columns(order, _ORDER_FIELDS))
        except IntegrityError as exc:
            raise RefTaken(order.client_order_ref) from exc
        await self.session.execute(_INSERT_LINE, [
            {"order_id": order.id, **_columns(line, _LINE_FIELDS)} for line in order.lines])
        await self._add_approvals(order.id, order.approvals)

    async def _add_approvals(self, order_id: str, approvals: Sequence[Approval]) -> None:
        if approvals:
            await self.session.execute(_INSERT_APPROVAL, [
                {"order_id": order_id, **_columns(approval, _APPROVAL_FIELDS)}
                for approval in approvals])

    async def save(self, order: Order) -> None:
        await self.session.execute(
            update(OrderRow).where(OrderRow.id == order.id)
            .values(status=order.status, updated_at=order.updated_at)
            .execution_options(synchronize_session=False))
        table = OrderLineRow.__table__
        await self.session.execute(
            update(table)
            .where(table.c.order_id == bindparam("o"), table.c.line_no == bindparam("n"))
            .values(quantity_closed=bindparam("c"), close_reason=bindparam("r")),
            [dict(o=order.id, n=line.line_no, c=line.quantity_closed, r=line.close_reason)
             for line in order.lines])

    async def decide(self, order_id: str, stage: Stage, decision: OrderStatus,
                     next_stage: Stage, reason: str, moment: datetime) -> bool:
        values = dict(awaiting_stage=int(next_stage), decision=decision, status=decision,
                      updated_at=moment)
        if decision == OrderStatus.REJECTED:
            values["decision_reason"] = reason
        result = await self.session.execute(
            update(OrderRow)
            .where(OrderRow.id == order_id, OrderRow.decision == OrderStatus.SUBMITTED,
                   OrderRow.awaiting_stage == int(stage))
            .values(**values).execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def add_approval(self, order_id: str, approval: Approval) -> None:
        await self._add_approvals(order_id, [approval])

    async def cancel(self, order_id: str, reason: str, moment: datetime) -> bool:
        result = await self.session.execute(
            update(OrderRow)
            .where(OrderRow.id == order_id,
                   OrderRow.status.in_([OrderStatus.SUBMITTED, OrderStatus.APPROVED]))
            .values(decision=OrderStatus.CANCELLED, status=OrderStatus.CANCELLED,
                    awaiting_stage=0, decision_reason=reason, updated_at=moment)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def page(self, query: OrderQuery, page: PageRequest) -> Page[Order]:
        statement = select(OrderRow).order_by(OrderRow.submitted_at.desc(), OrderRow.id)
        statement = of_dealers(statement, OrderRow.dealer_id, query)
        if query.statuses:
            statement = statement.where(OrderRow.status.in_([s.value for s in query.statuses]))
        if query.awaiting_stage:
            statement = statement.where(OrderRow.awaiting_stage == query.awaiting_stage,
                                        OrderRow.decision == OrderStatus.SUBMITTED)
        if query.submitted_after is not None:
            statement = statement.where(OrderRow.submitted_at >= query.submitted_after)
        if query.submitted_before is not None:
            statement = statement.where(OrderRow.submitted_at < query.submitted_before)
        return (await fetch_page(self.session, statement, page, count=True)).map(_order)

    async def add_to_line(self, order_id: str, line_no: int, **quantities: int) -> None:
        await self.session.execute(
            update(OrderLineRow)
            .where(OrderLineRow.order_id == order_id, OrderLineRow.line_no == line_no)
            .values({name: getattr(OrderLineRow, name) + quantity
                     for name, quantity in quantities.items()})
            .execution_options(synchronize_session=False))

    # ERP ingest: what shipping looks at, in as few statements as possible.

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

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        await exposure.refresh_orders(self.session, order_ids)


class SqlProducts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Product | None:
        row = await self.session.get(ProductRow, code)
        return None if row is None else to_domain(Product, row,
                                                  serial_tracked=bool(row.serial_tracked))

    async def stored(self, codes: Iterable[str]) -> dict[str, Product]:
        return {code: Product(**values)
                for code, values in (await catalog.stored_products(self.session, codes)).items()}

    async def add_many(self, products: Sequence[Product]) -> None:
        try:
            await catalog.insert_products(self.session, [asdict(p) for p in products])
        except IntegrityError as exc:
            raise GtinTaken("one of the GTINs") from exc

    async def save_many(self, products: Sequence[Product]) -> None:
        try:
            await catalog.update_products(self.session, [asdict(p) for p in products])
        except IntegrityError as exc:
            raise GtinTaken("one of the GTINs") from exc

    async def page(self, product_line: str, page: PageRequest) -> Page[Product]:
        query = select(ProductRow).order_by(ProductRow.code)
        if product_line:
            query = query.where(ProductRow.product_line == product_line)
        return (await fetch_page(self.session, query, page, count=True)).map(
            lambda row: to_domain(Product, row, serial_tracked=bool(row.serial_tracked)))

    async def priced(self, codes: Iterable[str], tier: int, company: str, on: str
                     ) -> tuple[dict[str, CatalogEntry], dict[str, Money]]:
        rows = (await self.session.execute(PRICED_PRODUCTS, {
            "codes": list(codes), "tier": tier, "company": company, "on": on})).all()
        catalog = {row.code: CatalogEntry(row.code, row.gtin, row.product_line,
                                          Money(row.list_price_minor, row.currency))
                   for row in rows}
        prices = {row.code: Money(row.unit_price_minor, row.price_currency)
                  for row in rows if row.unit_price_minor is not None}
        return catalog, prices

    async def catalog(self, codes: Iterable[str]) -> dict[str, CatalogEntry]:
        return {p.code: CatalogEntry(p.code, p.gtin, p.product_line,
                                     Money(p.list_price_minor, p.currency))
                for p in (await self.session.scalars(
                    select(ProductRow).where(ProductRow.code.in_(list(codes))))).all()}

    async def known(self, codes: Iterable[str]) -> set[str]:
        return set((await self.session.scalars(
            select(ProductRow.code).where(ProductRow.code.in_(list(codes))))).all())

    async def gtin_owners(self, gtins: Iterable[str]) -> dict[str, str]:
        return await catalog.gtin_holders(self.session, gtins)

    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        return [ProductIdentity(p.code, p.gtin, p.product_line) for p in (
            await self.session.execute(
                select(ProductRow.code, ProductRow.gtin, ProductRow.product_line)
                .where(or_(ProductRow.code.in_(list(codes)),
                           ProductRow.gtin.in_(list(gtins)))))).all()]


def _price_list(row: PriceListRow) -> PriceList:
    return to_domain(PriceList, row,
                     items=[to_domain(PriceItem, item) for item in row.items])


class SqlPriceLists:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, price_list_id: str) -> PriceList | None:
        row = await self.session.get(PriceListRow, price_list_id)
        return None if row is None else _price_list(row)

    async def find(self, tier: int, company: str, valid_from: str) -> PriceList | None:
        row = (await self.session.scalars(select(PriceListRow).where(
            PriceListRow.tier == tier, PriceListRow.selling_company == company,
            PriceListRow.valid_from == valid_from))).first()
        return None if row is None else _price_list(row)

    async def save(self, price_list: PriceList) -> None:
        row = await self.session.get(PriceListRow, price_list.id)
        if row is None:
            row = PriceListRow(id=price_list.id)
            self.session.add(row)
        for name in ("name", "tier", "selling_company", "valid_from", "valid_to",
                     "updated_at"):
            setattr(row, name, getattr(price_list, name))
        row.items = [PriceListItemRow(**asdict(item)) for item in price_list.items]
        await self.session.flush()

    async def page(self, query: PriceListQuery, page: PageRequest,
                   only_tier: int | None = None) -> Page[PriceList]:
        statement = select(PriceListRow).order_by(
            PriceListRow.tier, PriceListRow.selling_company, PriceListRow.valid_from.desc())
        if query.tier:
            statement = statement.where(PriceListRow.tier == query.tier)
        if query.selling_company:
            statement = statement.where(PriceListRow.selling_company == query.selling_company)
        if query.valid_on:
            on = query.valid_on
            statement = statement.where(PriceListRow.valid_from <= on, or_(
                PriceListRow.valid_to == "", PriceListRow.valid_to >= on))
        if only_tier is not None:
            statement = statement.where(PriceListRow.tier == only_tier)
        return (await fetch_page(self.session, statement, page, count=True)).map(_price_list)
