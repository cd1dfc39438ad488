"""What the incentive use cases need from the world, as protocols: the unit of work with
its repositories, and the collaborators bootstrap.py wires (``Deps``). The adapters
implement them over SQL; tests/incentive/fakes.py implements them in memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, Self

from services.incentive.domain.accruals import Accrual, AccrualFilter, AccrualKind
from services.incentive.domain.commission import CommissionRule
from shared.clock import Clock
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


class AccrualRepository(Protocol):
    async def add(self, accrual: Accrual) -> None: ...

    async def get(self, accrual_id: str) -> Accrual | None: ...

    async def for_source(self, kind: AccrualKind, source_type: str,
                         source_id: str) -> Accrual | None: ...

    async def page(self, which: AccrualFilter, page: PageRequest) -> Page[Accrual]: ...


class IncentiveUnitOfWork(Protocol):
    accruals: AccrualRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api and consumers to pass on."""

    uow: Callable[[], IncentiveUnitOfWork]
    # A unit of work inside a consumer's transaction (the one holding its inbox row).
    uow_in: Callable[[object], IncentiveUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
    commission: CommissionRule
