"""The registration unit of work over its database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.registration.adapters.repositories import (
    SqlAuthorizations,
    SqlConflicts,
    SqlCustomers,
    SqlDealers,
    SqlLeads,
    SqlNotes,
    SqlRegistrations,
)
from shared.uow import UnitOfWork


class SqlRegistrationUnitOfWork(UnitOfWork):
    customers: SqlCustomers
    registrations: SqlRegistrations
    conflicts: SqlConflicts
    notes: SqlNotes
    leads: SqlLeads
    authorizations: SqlAuthorizations
    dealers: SqlDealers

    def bind(self, session: AsyncSession) -> None:
        self.customers = SqlCustomers(session)
        self.registrations = SqlRegistrations(session)
        self.conflicts = SqlConflicts(session)
        self.notes = SqlNotes(session)
        self.leads = SqlLeads(session)
        self.authorizations = SqlAuthorizations(session)
        self.dealers = SqlDealers(session)
