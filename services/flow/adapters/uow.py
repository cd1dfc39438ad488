"""The flow unit of work over its database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.flow.adapters.repositories import (
    SqlBlobs,
    SqlDiversions,
    SqlFlowRows,
    SqlLedgers,
    SqlMappings,
    SqlPeriods,
    SqlProjections,
    SqlUploads,
)
from shared.uow import UnitOfWork


class SqlFlowUnitOfWork(UnitOfWork):
    uploads: SqlUploads
    blobs: SqlBlobs
    mappings: SqlMappings
    ledgers: SqlLedgers
    periods: SqlPeriods
    flow_rows: SqlFlowRows
    diversions: SqlDiversions
    projections: SqlProjections

    def bind(self, session: AsyncSession) -> None:
        self.uploads = SqlUploads(session)
        self.blobs = SqlBlobs(session)
        self.mappings = SqlMappings(session)
        self.ledgers = SqlLedgers(session)
        self.periods = SqlPeriods(session)
        self.flow_rows = SqlFlowRows(session)
        self.diversions = SqlDiversions(session)
        self.projections = SqlProjections(session)
