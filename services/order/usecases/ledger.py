"""Invoices (credit notes included) and payments as the dealer and finance read them:
the documents behind the balances and statements, scoped like every order read."""

from __future__ import annotations

from dataclasses import replace

from services.order.domain.ingest import InvoiceIn, PaymentIn
from services.order.domain.statements import LedgerQuery
from services.order.usecases.common import day, visible
from services.order.usecases.ports import OrderUnitOfWork
from shared.context import Principal
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def _scoped(query: LedgerQuery, from_field: str, to_field: str, who: Principal,
                  scopes: Scopes) -> LedgerQuery | None:
    query = replace(query, day_from=day(query.day_from, from_field, required=False),
                    day_to=day(query.day_to, to_field, required=False))
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return None
    return replace(query, dealer_ids=dealers)


async def list_invoices(query: LedgerQuery, page: PageRequest, *, who: Principal,
                        uow: OrderUnitOfWork, scopes: Scopes) -> Page[InvoiceIn]:
    """Newest first, counted."""
    scoped = await _scoped(query, "issued_from", "issued_to", who, scopes)
    if scoped is None:
        return Page([], "", 0)
    async with uow.read():
        return await uow.invoices.page(scoped, page)


async def list_payments(query: LedgerQuery, page: PageRequest, *, who: Principal,
                        uow: OrderUnitOfWork, scopes: Scopes) -> Page[PaymentIn]:
    """Newest first, counted."""
    scoped = await _scoped(query, "received_from", "received_to", who, scopes)
    if scoped is None:
        return Page([], "", 0)
    async with uow.read():
        return await uow.payments.page(scoped, page)
