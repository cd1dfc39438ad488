"""The audit trail, read by HQ admins: who changed what, before and after, and why.
(Every change writes its entry through ``access.audit``, in its own transaction.)"""

from __future__ import annotations

from services.identity.domain.model import AuditEntry, AuditFilter
from services.identity.usecases.access import require_admin
from services.identity.usecases.ports import IdentityUnitOfWork
from shared.context import Principal
from shared.pagination import Page, PageRequest


async def list_audit_events(which: AuditFilter, page: PageRequest, *, who: Principal,
                            uow: IdentityUnitOfWork) -> Page[AuditEntry]:
    """Newest first."""
    require_admin(who, "read the audit trail")
    async with uow.read():
        return await uow.audit.page(which, page)
