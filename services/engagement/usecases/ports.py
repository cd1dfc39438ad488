"""What the engagement use cases need from the world, as protocols: the unit of work
with its repositories and ``Deps``, the collaborators bootstrap.py wires. The adapters
implement them over SQL; tests/service/engagement/fakes.py implements them in memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Self

from services.engagement.domain.health import DealerFacts, HealthPolicy
from services.engagement.domain.inbox import InboxItem
from services.engagement.domain.people import Person
from services.engagement.domain.sop import SopRule, Task
from shared.clock import Clock
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


@dataclass(frozen=True)
class TaskFilter:
    # None: every dealer (HQ); else only these dealers' tasks.
    dealer_ids: frozenset[str] | None = None
    assignee_user_id: str = ""
    # Only tasks for a dealer's staff (what dealer users see).
    dealer_role_only: bool = False
    status: str = ""
    overdue_only: bool = False
    rule_id: str = ""


class RuleRepository(Protocol):
    async def add(self, rule: SopRule) -> None: ...

    async def list(self, page: PageRequest) -> Page[SopRule]: ...

    async def get(self, rule_id: str) -> SopRule | None: ...

    async def set_active(self, rule: SopRule, active: bool) -> int:
        """Stored if the rule is still at ``rule.version`` (StaleVersion otherwise); the
        new version."""

    async def triggered_by(self, signal: str) -> list[SopRule]:
        """Active rules whose trigger is ``signal``."""
        ...

    async def closed_by(self, signal: str) -> list[SopRule]:
        """Rules (active or not: their open tasks still close) whose closing is ``signal``."""
        ...


class TaskRepository(Protocol):
    async def add(self, task: Task) -> bool:
        """False when the rule already has a task about this subject."""
        ...

    async def update(self, task: Task) -> None: ...

    async def open_about(self, subject_id: str, rule_ids: list[str]) -> list[Task]: ...

    async def due(self, now: datetime, limit: int) -> list[Task]:
        """Open tasks past their deadline not yet marked overdue."""
        ...

    async def list(self, where: TaskFilter, page: PageRequest) -> Page[Task]: ...

    async def matching(self, where: TaskFilter) -> list[Task]: ...


class DirectoryRepository(Protocol):
    """People, org units and assignments as identity's events told them."""

    async def put_person(self, person: Person) -> None: ...

    async def person(self, user_id: str) -> Person | None: ...

    async def staff_of(self, dealer_id: str) -> list[str]:
        """Active dealer users of the dealer."""
        ...

    async def with_role(self, role: str, org_unit_ids: frozenset[str] | None = None) -> list[str]:
        """Active users having ``role`` (in one of these org units when given)."""
        ...

    async def put_org_unit(self, unit_id: str, kind: str, name: str, region_code: str,
                           created_at: datetime | None) -> None: ...

    async def units_of_region(self, region_code: str) -> frozenset[str]: ...

    async def assign(self, manager_user_id: str, dealer_id: str, product_line: str) -> None: ...

    async def unassign(self, manager_user_id: str, dealer_id: str, product_line: str) -> None: ...

    async def managers_of(self, dealer_id: str) -> list[str]: ...

    async def dealers_of(self, manager_user_id: str) -> frozenset[str]: ...

    async def names(self, ids: set[str]) -> dict[str, str]:
        """Display names of users and org units."""
        ...


class HealthRepository(Protocol):
    async def facts(self, dealer_id: str) -> DealerFacts | None:
        """A dealer's facts (``None`` for an id no event named as a dealer)."""
        ...

    async def all_facts(self, dealer_ids: frozenset[str] | None) -> list[DealerFacts]: ...

    async def touch(self, dealer_id: str, **moments: datetime) -> None:
        """Move last_login_at / last_order_at / last_flow_upload_at forward (never back)."""
        ...

    async def cover_flow(self, dealer_id: str, until, uploaded_at: datetime) -> None: ...

    async def set_flagged(self, dealer_id: str, status: str) -> None: ...

    async def put_registration(self, registration_id: str, dealer_id: str, is_open: bool,
                               protected_until: datetime | None) -> None: ...

    async def expiring(self, before: datetime) -> list[tuple[str, str, datetime]]:
        """Open registrations protected until before ``before`` whose dealer was not yet
        told: (registration id, dealer id, protected until)."""
        ...

    async def expiry_noticed(self, registration_id: str) -> None: ...

    async def put_statement(self, statement_id: str, dealer_id: str, issued_at: datetime,
                            confirmed: bool) -> None: ...

    async def policy(self) -> HealthPolicy: ...

    async def set_policy(self, policy: HealthPolicy) -> None: ...


class InboxRepository(Protocol):
    async def add(self, item: InboxItem) -> bool:
        """False when the recipient already has the item of this source."""
        ...

    async def list(self, user_id: str, unread_only: bool, page: PageRequest) -> Page[InboxItem]: ...

    async def unread_count(self, user_id: str) -> int: ...

    async def owned(self, user_id: str, ids: list[str]) -> set[str]:
        """Which of ``ids`` are the user's items."""
        ...

    async def mark_read(self, user_id: str, ids: list[str] | None, at: datetime) -> int:
        """Mark the user's items (all when ``ids`` is None) read; how many changed."""
        ...


class EngagementUnitOfWork(Protocol):
    rules: RuleRepository
    tasks: TaskRepository
    directory: DirectoryRepository
    health: HealthRepository
    inbox: InboxRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def exclusive(self, name: str) -> bool:
        """Whether no other replica runs ``name`` in a transaction now."""

    async def commit(self) -> None: ...


@dataclass
class Deps:
    uow: Callable[[], EngagementUnitOfWork]
    uow_in: Callable[[object], EngagementUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
