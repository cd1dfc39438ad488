"""Identity use cases: each change runs in one unit of work that also writes its audit
row and its event (outbox), so either all of it happens or none of it. One module per
area under usecases/; this class is their union, the one object the servicer and the
bootstrap call."""

from __future__ import annotations

from services.identity.usecases.audit import AuditUseCases
from services.identity.usecases.org import OrgUseCases
from services.identity.usecases.scope import ScopeUseCases
from services.identity.usecases.sessions import SessionUseCases
from services.identity.usecases.users import UserUseCases


class IdentityService(OrgUseCases, UserUseCases, SessionUseCases, ScopeUseCases,
                      AuditUseCases):
    """Org units and dealers, import, tags and audiences, users and roles, login and
    sessions, assignments and hand-over, scope resolution, audit trail."""
