"""The order repositories over SQL for channel inventory, accepted sell-through, dealer
accounts and rebate credits: domain objects in, domain objects out. Upserts are
``INSERT … ON CONFLICT``, spelled by the dialect in use; a part or a rebate credit
recorded twice is the primary key refusing it. ``get(..., for_update=True)`` is
``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transactions hold the database
lock from their start (shared/db.py), so it is left out there."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters import exposure
from services.order.adapters.orm import (
    ChannelInventoryRow,
    CreditExposureRow,
    DealerAccountRow,
    FlowPartRow,
    FlowStockMoveRow,
    FlowSupersededRow,
    InvoiceRow,
    PaymentRow,
    ProductRow,
    RebateCreditRow,
    of_dealers,
)
from services.order.domain.accounts import (
    CREDIT_NOTE,
    INVOICE,
    Account,
    AccountFilter,
    RebateCredit,
)
from services.order.domain.inventory import Stock, StockKey, StockMove, StockQuery
from services.order.domain.statements import DueItem
from shared.db import dialect_insert, fetch_page
from shared.pagination import Page, PageRequest


def _stock(row: ChannelInventoryRow) -> Stock:
    return Stock(StockKey(row.dealer_id, row.product_code, row.batch), row.gtin,
                 row.product_line, row.expiry_date, row.quantity_received, row.quantity_sold,
                 row.quantity_returned, row.updated_at)


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
        return {StockKey(r.dealer_id, r.product_code, r.batch): _stock(r) for r in rows}

    async def adjust(self, dealer_id: str, changes: dict[tuple[str, str], tuple[int, int]],
                     moment: datetime) -> None:
        table = ChannelInventoryRow
        for (product_code, batch), (received, returned) in changes.items():
            await self.session.execute(
                update(table)
                .where(table.dealer_id == dealer_id, table.product_code == product_code,
                       table.batch == batch)
                .values(quantity_received=table.quantity_received + received,
                        quantity_returned=table.quantity_returned + returned,
                        updated_at=moment)
                .execution_options(synchronize_session=False))

    async def expiries(self, dealer_id: str) -> dict[tuple[str, str], str]:
        table = ChannelInventoryRow
        return {(r.product_code, r.batch): r.expiry_date for r in (await self.session.execute(
            select(table.product_code, table.batch, table.expiry_date)
            .where(table.dealer_id == dealer_id))).all()}

    async def page(self, query: StockQuery, page: PageRequest) -> Page[Stock]:
        table = ChannelInventoryRow
        statement = select(table).order_by(table.dealer_id, table.product_code, table.batch)
        statement = of_dealers(statement, table.dealer_id, query)
        if query.product_code:
            statement = statement.where(table.product_code == query.product_code)
        if query.gtin:
            statement = statement.where(table.gtin == query.gtin.zfill(14))
        if query.batch:
            statement = statement.where(table.batch == query.batch)
        if query.product_line:
            statement = statement.where(table.product_code.in_(
                select(ProductRow.code).where(ProductRow.product_line == query.product_line)))
        if not query.include_empty:
            statement = statement.where(table.quantity_received - table.quantity_sold
                                        - table.quantity_returned > 0)
        return (await fetch_page(self.session, statement, page, count=True)).map(_stock)


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


def _account(row: DealerAccountRow) -> Account:
    return Account(row.dealer_id, row.selling_company, row.credit_limit_minor, row.currency,
                   row.payment_terms_days, row.updated_at, row.version)


class SqlAccounts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, dealer_id: str, company: str, *,
                  for_update: bool = False) -> Account | None:
        query = select(DealerAccountRow).where(DealerAccountRow.dealer_id == dealer_id,
                                               DealerAccountRow.selling_company == company)
        if for_update and self.session.bind.dialect.name != "sqlite":
            query = query.with_for_update()
        row = (await self.session.scalars(query)).first()
        return None if row is None else _account(row)

    async def save(self, account: Account) -> None:
        table = DealerAccountRow.__table__
        values = dict(dealer_id=account.dealer_id, selling_company=account.selling_company,
                      credit_limit_minor=account.credit_limit_minor, currency=account.currency,
                      payment_terms_days=account.payment_terms_days,
                      updated_at=account.updated_at, version=account.version)
        statement = dialect_insert(self.session, table).values(**values)
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=[table.c.dealer_id, table.c.selling_company],
            set_={key: statement.excluded[key] for key in (
                "credit_limit_minor", "currency", "payment_terms_days", "updated_at",
                "version")}))

    async def matching(self, which: AccountFilter) -> list[Account]:
        query = select(DealerAccountRow).order_by(DealerAccountRow.dealer_id,
                                                  DealerAccountRow.selling_company)
        if which.dealer_id:
            query = query.where(DealerAccountRow.dealer_id == which.dealer_id)
        if which.dealer_ids is not None:
            query = query.where(DealerAccountRow.dealer_id.in_(which.dealer_ids))
        if which.selling_company:
            query = query.where(DealerAccountRow.selling_company == which.selling_company)
        return [_account(row) for row in (await self.session.scalars(query)).all()]

    async def exposures(self, keys: Sequence[tuple[str, str]]
                        ) -> dict[tuple[str, str], tuple[int, int]]:
        found = {}
        for dealers in _dealer_chunks(keys):
            for row in (await self.session.execute(select(
                    CreditExposureRow.dealer_id, CreditExposureRow.selling_company,
                    CreditExposureRow.outstanding_minor, CreditExposureRow.open_orders_minor)
                    .where(CreditExposureRow.dealer_id.in_(dealers)))).all():
                found[(row[0], row[1])] = (int(row[2]), int(row[3]))
        return {key: found[key] for key in keys if key in found}

    async def credit_figures(self, dealer_id: str, company: str) -> tuple[int, int, int]:
        return await exposure.figures(self.session, dealer_id, company, lock=True)

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        await exposure.add(self.session, outstanding={(dealer_id, company): amount_minor})

    async def add_open_orders(self, dealer_id: str, company: str, amount_minor: int) -> None:
        await exposure.add(self.session, open_orders={(dealer_id, company): amount_minor})

    async def dues(self, keys: Sequence[tuple[str, str]]
                   ) -> dict[tuple[str, str], tuple[list[DueItem], int]]:
        items: dict[tuple[str, str], list[DueItem]] = defaultdict(list)
        settled: dict[tuple[str, str], int] = defaultdict(int)
        for dealers in _dealer_chunks(keys):
            for row in (await self.session.execute(select(
                    InvoiceRow.dealer_id, InvoiceRow.selling_company, InvoiceRow.kind,
                    InvoiceRow.due_on, InvoiceRow.amount_minor)
                    .where(InvoiceRow.dealer_id.in_(dealers)))).all():
                if row.kind == INVOICE:
                    items[(row.dealer_id, row.selling_company)].append(
                        DueItem(row.due_on, row.amount_minor))
                elif row.kind == CREDIT_NOTE:
                    settled[(row.dealer_id, row.selling_company)] += row.amount_minor
            for table in (PaymentRow, RebateCreditRow):
                for dealer, company, total in (await self.session.execute(
                        select(table.dealer_id, table.selling_company,
                               func.sum(table.amount_minor))
                        .where(table.dealer_id.in_(dealers))
                        .group_by(table.dealer_id, table.selling_company))).all():
                    settled[(dealer, company)] += int(total or 0)
        return {key: (items.get(key, []), settled.get(key, 0)) for key in keys
                if key in items or key in settled}


class SqlRebateCredits:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        statement = dialect_insert(self.session, RebateCreditRow.__table__).values(
            credit_id=credit.credit_id, dealer_id=credit.dealer_id,
            selling_company=credit.selling_company, amount_minor=credit.amount_minor,
            currency=credit.currency, credited_on=credit.credited_on,
            description=credit.description, recorded_at=moment).on_conflict_do_nothing()
        return (await self.session.execute(statement)).rowcount == 1


def _dealer_chunks(keys: Sequence[tuple[str, str]], size: int = 500):
    """The keys' dealer ids in chunks of ``size`` (bounded IN lists)."""
    dealers = sorted({dealer for dealer, _ in keys})
    for start in range(0, len(dealers), size):
        yield dealers[start:start + size]
