"""The incentive unit of work over its database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.incentive.adapters.repositories import SqlAccruals
from shared.uow import UnitOfWork


class SqlIncentiveUnitOfWork(UnitOfWork):
    accruals: SqlAccruals

    def bind(self, session: AsyncSession) -> None:
        self.accruals = SqlAccruals(session)
