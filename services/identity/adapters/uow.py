"""The identity unit of work over its database."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.adapters.repositories import (
    SqlAssignments,
    SqlAuditLog,
    SqlMaterials,
    SqlNotices,
    SqlOrgUnits,
    SqlRefreshTokens,
    SqlSignIns,
    SqlUsers,
)
from shared.bus.outbox import Outbox
from shared.db import Database
from shared.uow import UnitOfWork


class SqlIdentityUnitOfWork(UnitOfWork):
    """``on_change`` runs after a commit that wrote an audit entry: every change of the
    org, users, tags or assignments writes one, and each may change a scope."""

    org_units: SqlOrgUnits
    users: SqlUsers
    refresh_tokens: SqlRefreshTokens
    assignments: SqlAssignments
    audit: SqlAuditLog
    notices: SqlNotices
    materials: SqlMaterials

    def __init__(self, db: Database, outbox: Outbox, *,
                 on_change: Callable[[], None] = lambda: None) -> None:
        super().__init__(db, outbox)
        self.on_change = on_change

    def bind(self, session: AsyncSession) -> None:
        self.org_units = SqlOrgUnits(session)
        self.users = SqlUsers(session)
        self.refresh_tokens = SqlRefreshTokens(session)
        self.assignments = SqlAssignments(session)
        self.audit = SqlAuditLog(session)
        self.notices = SqlNotices(session)
        self.materials = SqlMaterials(session)
        self.sign_ins = SqlSignIns(session)

    async def commit(self) -> None:
        changed = self.audit.written
        await super().commit()
        if changed:
            self.on_change()
