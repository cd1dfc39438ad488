"""The order unit of work over its database (for the use cases written as handlers)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.order.adapters.repositories import (
    SqlAcceptedFlow,
    SqlAccounts,
    SqlRebateCredits,
    SqlStock,
)
from shared.uow import UnitOfWork


class SqlOrderUnitOfWork(UnitOfWork):
    stock: SqlStock
    accepted_flow: SqlAcceptedFlow
    accounts: SqlAccounts
    rebate_credits: SqlRebateCredits

    def bind(self, session: AsyncSession) -> None:
        self.stock = SqlStock(session)
        self.accepted_flow = SqlAcceptedFlow(session)
        self.accounts = SqlAccounts(session)
        self.rebate_credits = SqlRebateCredits(session)
