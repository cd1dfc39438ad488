"""The incentive unit of work over its database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.incentive.adapters.repositories import (
    SqlAccruals,
    SqlDealers,
    SqlOrders,
    SqlOwnership,
    SqlPrograms,
    SqlRules,
    SqlSales,
    SqlSettlements,
    SqlTargets,
)
from shared.uow import UnitOfWork


class SqlIncentiveUnitOfWork(UnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.sales = SqlSales(session)
        self.orders = SqlOrders(session)
        self.ownership = SqlOwnership(session)
        self.dealers = SqlDealers(session)
        self.rules = SqlRules(session)
        self.programs = SqlPrograms(session)
        self.targets = SqlTargets(session)
        self.accruals = SqlAccruals(session)
        self.settlements = SqlSettlements(session)
