"""Invoices (credit notes included) and payments as the dealer and finance read them:
the documents behind the balances and statements, scoped like every order read."""

from __future__ import annotations

from sqlalchemy import select

from services.order.adapters.orm import InvoiceRow, PaymentRow, StatementLineRow
from services.order.domain.ingest import parse_day
from services.order.domain.statements import LineKind
from services.order.usecases.common import UseCaseBase, invoice_to_proto, payment_to_proto
from shared.db import fetch_page
from shared.errors import InvalidArgument
from shared.pagination import PageRequest


def _day(value: str, field: str) -> str:
    if value and parse_day(value) is None:
        raise InvalidArgument.field(field, "must be a date YYYY-MM-DD")
    return value


class LedgerUseCases(UseCaseBase):
    async def _ledger_page(self, row_type, day_column, ref_kinds, request, day_from: str,
                           day_to: str, from_field: str, to_field: str):
        """One page of invoices or payments the viewer may see, newest first, counted."""
        day_from, day_to = _day(day_from, from_field), _day(day_to, to_field)
        page = PageRequest.of(request.page.page_size, request.page.page_token)
        scope = await self.scope("order.read")
        query = select(row_type).order_by(day_column.desc(), row_type.id.desc())
        dealer_id = request.dealer_id.strip()
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], "", 0
            query = query.where(row_type.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(row_type.dealer_id.in_(scope.dealer_ids))
        if request.selling_company.strip():
            query = query.where(row_type.selling_company == request.selling_company.strip())
        if request.statement_id.strip():
            query = query.where(row_type.id.in_(
                select(StatementLineRow.ref_id).where(
                    StatementLineRow.statement_id == request.statement_id.strip(),
                    StatementLineRow.kind.in_([int(kind) for kind in ref_kinds]))))
        if day_from:
            query = query.where(day_column >= day_from)
        if day_to:
            query = query.where(day_column <= day_to)
        async with self.db.read() as session:
            result = await fetch_page(session, query, page, count=True)
        return result.items, result.next_token, result.total

    async def list_invoices(self, request):
        rows, token, total = await self._ledger_page(
            InvoiceRow, InvoiceRow.issued_on, (LineKind.INVOICE, LineKind.CREDIT_NOTE), request,
            request.issued_from, request.issued_to, "issued_from", "issued_to")
        return [invoice_to_proto(row) for row in rows], token, total

    async def list_payments(self, request):
        rows, token, total = await self._ledger_page(
            PaymentRow, PaymentRow.received_on, (LineKind.PAYMENT,), request,
            request.received_from, request.received_to, "received_from", "received_to")
        return [payment_to_proto(row) for row in rows], token, total
