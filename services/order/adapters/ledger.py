"""Invoices, credit notes and payments over SQL (what the ERP pushed; the ERP's own
breakdowns kept as JSON), and the statements issued from them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import (
    InvoiceRow,
    OrderLineRow,
    OrderRow,
    PaymentRow,
    RebateCreditRow,
    ShipmentLineRow,
    ShipmentRow,
    StatementLineRow,
    StatementRow,
    of_dealers,
    to_domain,
)
from services.order.domain.accounts import CREDIT_NOTE
from services.order.domain.ingest import AllocationIn, InvoiceIn, InvoiceLineIn, PaymentIn
from services.order.domain.orders import OrderStatus
from services.order.domain.statements import (
    ISSUED,
    KIND_LABELS,
    SUPERSEDED,
    Entry,
    IssuedLine,
    LedgerQuery,
    LineKind,
    Statement,
    StatementQuery,
)
from shared.db import fetch_page
from shared.pagination import Page, PageRequest


def _ledger_query(row_type, day_column, ref_kinds, query: LedgerQuery):
    """Invoices or payments matching the query, newest first."""
    statement = select(row_type).order_by(day_column.desc(), row_type.id.desc())
    statement = of_dealers(statement, row_type.dealer_id, query)
    if query.selling_company:
        statement = statement.where(row_type.selling_company == query.selling_company)
    if query.statement_id:
        statement = statement.where(row_type.id.in_(
            select(StatementLineRow.ref_id).where(
                StatementLineRow.statement_id == query.statement_id,
                StatementLineRow.kind.in_([int(kind) for kind in ref_kinds]))))
    if query.day_from:
        statement = statement.where(day_column >= query.day_from)
    if query.day_to:
        statement = statement.where(day_column <= query.day_to)
    return statement


def _invoice(row: InvoiceRow) -> InvoiceIn:
    return InvoiceIn(
        invoice_id=row.id, kind=row.kind, dealer_id=row.dealer_id,
        selling_company=row.selling_company, invoice_no=row.invoice_no,
        issued_on=row.issued_on, due_on=row.due_on, amount_minor=row.amount_minor,
        tax_minor=row.tax_minor, currency=row.currency, tax_currency=row.currency,
        return_id=row.return_id,
        lines=tuple(InvoiceLineIn(item["line_no"], item["shipment_id"],
                                  item["shipment_line_no"], item["product_code"],
                                  item["quantity"], item["amount_minor"], row.currency)
                    for item in json.loads(row.lines or "[]")),
        content_hash=row.content_hash)


def _payment(row: PaymentRow) -> PaymentIn:
    return PaymentIn(
        payment_id=row.id, dealer_id=row.dealer_id, selling_company=row.selling_company,
        received_on=row.received_on, amount_minor=row.amount_minor, currency=row.currency,
        method=row.method, reference=row.reference,
        allocations=tuple(AllocationIn(item["invoice_id"], item["amount_minor"], row.currency)
                          for item in json.loads(row.allocations or "[]")),
        content_hash=row.content_hash)


class SqlInvoices:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def digests(self, invoice_ids: Iterable[str]) -> dict[str, str]:
        return dict((await self.session.execute(
            select(InvoiceRow.id, InvoiceRow.content_hash)
            .where(InvoiceRow.id.in_(list(invoice_ids))))).all())

    async def dealers(self, invoice_ids: Iterable[str]) -> dict[str, str]:
        return dict((await self.session.execute(
            select(InvoiceRow.id, InvoiceRow.dealer_id)
            .where(InvoiceRow.id.in_(list(invoice_ids))))).all())

    async def add(self, invoice: InvoiceIn, moment: datetime) -> None:
        self.session.add(InvoiceRow(
            id=invoice.invoice_id, kind=invoice.kind, dealer_id=invoice.dealer_id,
            selling_company=invoice.selling_company, invoice_no=invoice.invoice_no,
            issued_on=invoice.issued_on, due_on=invoice.due_on,
            amount_minor=invoice.amount_minor, tax_minor=invoice.tax_minor,
            currency=invoice.currency, return_id=invoice.return_id,
            lines=json.dumps([dict(line_no=line.line_no, shipment_id=line.shipment_id,
                                   shipment_line_no=line.shipment_line_no,
                                   product_code=line.product_code, quantity=line.quantity,
                                   amount_minor=line.amount_minor)
                              for line in invoice.lines]),
            content_hash=invoice.content_hash, recorded_at=moment))

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[InvoiceIn]:
        statement = _ledger_query(InvoiceRow, InvoiceRow.issued_on,
                                  (LineKind.INVOICE, LineKind.CREDIT_NOTE), query)
        return (await fetch_page(self.session, statement, page, count=True)).map(_invoice)


class SqlPayments:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def digests(self, payment_ids: Iterable[str]) -> dict[str, str]:
        return dict((await self.session.execute(
            select(PaymentRow.id, PaymentRow.content_hash)
            .where(PaymentRow.id.in_(list(payment_ids))))).all())

    async def add(self, payment: PaymentIn, moment: datetime) -> None:
        self.session.add(PaymentRow(
            id=payment.payment_id, dealer_id=payment.dealer_id,
            selling_company=payment.selling_company, received_on=payment.received_on,
            amount_minor=payment.amount_minor, currency=payment.currency,
            method=payment.method, reference=payment.reference,
            allocations=json.dumps([dict(invoice_id=a.invoice_id, amount_minor=a.amount_minor)
                                    for a in payment.allocations]),
            content_hash=payment.content_hash, recorded_at=moment))

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[PaymentIn]:
        statement = _ledger_query(PaymentRow, PaymentRow.received_on, (LineKind.PAYMENT,),
                                  query)
        return (await fetch_page(self.session, statement, page, count=True)).map(_payment)


def _statement(row: StatementRow, with_lines: bool = True) -> Statement:
    return to_domain(Statement, row, lines=[
        to_domain(IssuedLine, line, disputed=bool(line.disputed)) for line in row.lines]
        if with_lines else [])


class SqlStatements:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entries(self, dealer_id: str, company: str, end: str) -> list[Entry]:
        session = self.session
        entries: list[Entry] = []
        for row in (await session.scalars(select(InvoiceRow).where(
                InvoiceRow.dealer_id == dealer_id, InvoiceRow.selling_company == company,
                InvoiceRow.issued_on <= end))).all():
            kind = LineKind.CREDIT_NOTE if row.kind == CREDIT_NOTE else LineKind.INVOICE
            label = f"{KIND_LABELS[kind]} {row.invoice_no or row.id}"
            if row.return_id:
                label += f" (return {row.return_id})"
            entries.append(Entry(kind, row.id, row.issued_on, row.amount_minor, label))
        for row in (await session.scalars(select(PaymentRow).where(
                PaymentRow.dealer_id == dealer_id, PaymentRow.selling_company == company,
                PaymentRow.received_on <= end))).all():
            entries.append(Entry(LineKind.PAYMENT, row.id, row.received_on, row.amount_minor,
                                 f"{KIND_LABELS[LineKind.PAYMENT]} {row.method} "
                                 f"{row.reference}".strip()))
        for row in (await session.scalars(select(RebateCreditRow).where(
                RebateCreditRow.dealer_id == dealer_id,
                RebateCreditRow.selling_company == company,
                RebateCreditRow.credited_on <= end))).all():
            entries.append(Entry(LineKind.REBATE_CREDIT, row.credit_id, row.credited_on,
                                 row.amount_minor,
                                 f"{KIND_LABELS[LineKind.REBATE_CREDIT]} {row.description}"))
        for row in (await session.execute(select(
                OrderRow.id, OrderRow.submitted_at, OrderRow.total_minor,
                OrderRow.client_order_ref).where(
                OrderRow.dealer_id == dealer_id, OrderRow.selling_company == company,
                OrderRow.status.notin_([OrderStatus.REJECTED, OrderStatus.CANCELLED])))).all():
            entries.append(Entry(LineKind.ORDER, row.id, row.submitted_at.date().isoformat(),
                                 row.total_minor,
                                 f"{KIND_LABELS[LineKind.ORDER]} {row.client_order_ref}"))
        value = func.sum(ShipmentLineRow.quantity * OrderLineRow.unit_price_minor)
        for shipment_id, ship_date, waybill, amount in (await session.execute(
                select(ShipmentRow.id, ShipmentRow.ship_date, ShipmentRow.waybill_no, value)
                .join(ShipmentLineRow, ShipmentLineRow.shipment_id == ShipmentRow.id)
                .join(OrderLineRow, (OrderLineRow.order_id == ShipmentLineRow.order_id)
                      & (OrderLineRow.line_no == ShipmentLineRow.order_line_no))
                .where(ShipmentRow.dealer_id == dealer_id,
                       ShipmentRow.selling_company == company, ShipmentRow.ship_date <= end)
                .group_by(ShipmentRow.id, ShipmentRow.ship_date,
                          ShipmentRow.waybill_no))).all():
            entries.append(Entry(LineKind.SHIPMENT, shipment_id, ship_date, int(amount or 0),
                                 f"{KIND_LABELS[LineKind.SHIPMENT]} {waybill}".strip()))
        return entries

    async def supersede(self, dealer_id: str, company: str, start: str,
                        end: str) -> list[str]:
        ids = list((await self.session.scalars(select(StatementRow.id).where(
            StatementRow.dealer_id == dealer_id, StatementRow.selling_company == company,
            StatementRow.period_start == start, StatementRow.period_end == end,
            StatementRow.status != SUPERSEDED).order_by(StatementRow.issued_at)
            .with_for_update())).all())
        if ids:
            await self.session.execute(
                update(StatementRow).where(StatementRow.id.in_(ids))
                .values(status=SUPERSEDED).execution_options(synchronize_session=False))
        return ids

    async def add(self, statement: Statement) -> None:
        values = {f: getattr(statement, f) for f in vars(statement) if f != "lines"}
        self.session.add(StatementRow(**values, lines=[
            StatementLineRow(**vars(line)) for line in statement.lines]))
        await self.session.flush()

    async def get(self, statement_id: str) -> Statement | None:
        row = await self.session.get(StatementRow, statement_id, populate_existing=True)
        return None if row is None else _statement(row)

    async def confirm(self, confirmed: Statement) -> bool:
        result = await self.session.execute(
            update(StatementRow)
            .where(StatementRow.id == confirmed.id, StatementRow.status == ISSUED)
            .values(status=confirmed.status, confirmed_at=confirmed.confirmed_at,
                    confirmed_by=confirmed.confirmed_by)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def save_dispute(self, statement: Statement, line: IssuedLine) -> None:
        await self.session.execute(
            update(StatementLineRow)
            .where(StatementLineRow.statement_id == statement.id,
                   StatementLineRow.line_no == line.line_no)
            .values(disputed=True, dispute_reason=line.dispute_reason,
                    disputed_amount_minor=line.disputed_amount_minor)
            .execution_options(synchronize_session=False))
        await self.session.execute(
            update(StatementRow).where(StatementRow.id == statement.id)
            .values(status=statement.status).execution_options(synchronize_session=False))

    async def page(self, query: StatementQuery, page: PageRequest) -> Page[Statement]:
        statement = select(StatementRow).order_by(StatementRow.period_start.desc(),
                                                  StatementRow.issued_at.desc())
        statement = of_dealers(statement, StatementRow.dealer_id, query)
        if query.selling_company:
            statement = statement.where(StatementRow.selling_company == query.selling_company)
        if query.statuses:
            statement = statement.where(StatementRow.status.in_(list(query.statuses)))
        return (await fetch_page(self.session, statement, page, count=True)).map(
            lambda row: _statement(row, with_lines=False))
