"""The order unit of work over its database: the repositories of every area bound to
one session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.ledger import SqlInvoices, SqlPayments, SqlStatements
from services.order.adapters.orders import SqlOrders, SqlPriceLists, SqlProducts
from services.order.adapters.repositories import (
    SqlAcceptedFlow,
    SqlAccounts,
    SqlRebateCredits,
    SqlStock,
)
from services.order.adapters.returns import SqlReturns
from services.order.adapters.shipments import SqlDiscrepancies, SqlReceipts, SqlShipments
from services.order.adapters.stats import SqlStats
from shared.uow import UnitOfWork


class SqlOrderUnitOfWork(UnitOfWork):
    stock: SqlStock
    accepted_flow: SqlAcceptedFlow
    accounts: SqlAccounts
    rebate_credits: SqlRebateCredits
    shipments: SqlShipments
    orders: SqlOrders
    products: SqlProducts
    invoices: SqlInvoices
    payments: SqlPayments
    returns: SqlReturns
    price_lists: SqlPriceLists
    receipts: SqlReceipts
    discrepancies: SqlDiscrepancies
    statements: SqlStatements
    stats: SqlStats

    def bind(self, session: AsyncSession) -> None:
        self.stock = SqlStock(session)
        self.accepted_flow = SqlAcceptedFlow(session)
        self.accounts = SqlAccounts(session)
        self.rebate_credits = SqlRebateCredits(session)
        self.shipments = SqlShipments(session)
        self.orders = SqlOrders(session)
        self.products = SqlProducts(session)
        self.invoices = SqlInvoices(session)
        self.payments = SqlPayments(session)
        self.returns = SqlReturns(session)
        self.price_lists = SqlPriceLists(session)
        self.receipts = SqlReceipts(session)
        self.discrepancies = SqlDiscrepancies(session)
        self.statements = SqlStatements(session)
        self.stats = SqlStats(session)
