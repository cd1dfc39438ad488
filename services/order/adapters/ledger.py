"""Invoices, credit notes and payments over SQL (what the ERP pushed; the ERP's own
breakdowns kept as JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.orm import InvoiceRow, PaymentRow
from services.order.domain.ingest import InvoiceIn, PaymentIn


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
