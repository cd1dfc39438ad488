"""The engagement unit of work over its database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.engagement.adapters.repositories import (
    SqlDirectory,
    SqlHealth,
    SqlInbox,
    SqlRules,
    SqlTasks,
)
from shared.uow import UnitOfWork


class SqlEngagementUnitOfWork(UnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.rules = SqlRules(session)
        self.tasks = SqlTasks(session)
        self.directory = SqlDirectory(session)
        self.health = SqlHealth(session)
        self.inbox = SqlInbox(session)
