"""What the order use cases written as handlers need from the world, as protocols: the
unit of work with its repositories, and ``Deps``, the bundle bootstrap.py wires. The
adapters implement them over SQL (adapters/repositories.py, adapters/uow.py);
tests/service/order/fakes.py implements them in memory.

The stores enforce what the database does: a part of an accepted upload is recorded
once (``record_part`` answers False the second time), so the same part never moves
stock twice even if it were delivered under another event id."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self

from services.order.domain.accounts import Account, AccountFilter, RebateCredit
from services.order.domain.inventory import Stock, StockKey, StockMove
from services.order.domain.statements import DueItem
from shared.clock import Clock
from shared.scope import Scopes
from shared.uow import EventLog


class StockRepository(Protocol):
    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        """Add the moves' quantities to their positions (creating a position first
        named), in one statement."""

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]: ...


class AcceptedFlowRepository(Protocol):
    async def record_part(self, upload_id: str, part_index: int, dealer_id: str,
                          moves: list[StockMove], moment: datetime) -> bool:
        """Remember what a part of an accepted upload moved; False (and nothing
        stored) when that part is already recorded."""

    async def is_superseded(self, upload_id: str) -> bool: ...

    async def supersede(self, upload_id: str, superseded_by: str,
                        moment: datetime) -> list[StockMove]:
        """Mark the upload superseded; the moves of its parts not undone yet (now marked
        undone). Empty when it was superseded already."""


class AccountRepository(Protocol):
    async def get(self, dealer_id: str, company: str, *,
                  for_update: bool = False) -> Account | None: ...

    async def save(self, account: Account) -> None:
        """Insert or update the account's limit, currency and terms."""

    async def matching(self, which: AccountFilter) -> list[Account]:
        """Stored accounts, by dealer and company."""

    async def exposure(self, dealer_id: str, company: str) -> tuple[int, int]:
        """(outstanding, open orders) from the running exposure."""

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        ...

    async def dues(self, dealer_id: str, company: str) -> tuple[list[DueItem], int]:
        """The account's invoices (due date, amount) and everything that settles them
        (credit notes, payments, rebate credits), for what is overdue."""


class RebateCreditRepository(Protocol):
    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        """False (and nothing stored) when the credit id is booked already."""


class OrderUnitOfWork(Protocol):
    stock: StockRepository
    accepted_flow: AcceptedFlowRepository
    accounts: AccountRepository
    rebate_credits: RebateCreditRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api, consumers and workers to pass
    on."""

    uow: Callable[[], OrderUnitOfWork]
    # A unit of work inside a consumer's transaction (the one holding its inbox row).
    uow_in: Callable[[object], OrderUnitOfWork]
    clock: Clock
    scopes: Scopes
    # The selling company of requests and events that name none, and the currency of
    # amounts that name none.
    default_company: str
    currency: str
    # The use cases not yet written as handlers (services/order/service.py).
    service: Any
