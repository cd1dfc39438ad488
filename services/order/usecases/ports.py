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
from services.order.domain.ingest import (
    InvoiceIn,
    OrderLineState,
    OrderShipping,
    PaymentIn,
    ProductIdentity,
    RecordedShipment,
    ReturnToCredit,
)
from services.order.domain.inventory import Stock, StockKey, StockMove
from services.order.domain.orders import OrderStatus
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


class ShipmentRepository(Protocol):
    async def header_digests(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        """The header digest of each shipment recorded already."""

    async def line_digests(self, shipment_ids: Iterable[str]) -> dict[tuple[str, int], str]:
        """(shipment id, line no) → the content digest of each line recorded already."""

    async def add(self, shipments: list[RecordedShipment], moment: datetime) -> None:
        """The new headers and every line, in one statement each."""

    async def dealers(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        """The dealer of each recorded shipment."""

    async def order_line_of(self, shipment_id: str, line_no: int) -> tuple[str, int] | None:
        """(order id, order line no) a shipment line shipped."""


class OrderRepository(Protocol):
    async def shipping(self, order_ids: Iterable[str]) -> tuple[
            dict[str, OrderShipping], dict[tuple[str, int], OrderLineState]]:
        """The orders (locked until the transaction ends) and their lines."""

    async def add_shipped(self, quantities: dict[tuple[str, int], int]) -> None:
        """Add to the shipped quantity of (order id, line no)."""

    async def set_statuses(self, statuses: dict[str, OrderStatus], moment: datetime) -> None:
        ...

    async def add_invoiced(self, order_id: str, line_no: int, quantity: int) -> None: ...

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        """Recompute what these orders add to their accounts' open-order figure (after a
        change to their status or to their lines' ordered, closed or invoiced
        quantities)."""


class ProductRepository(Protocol):
    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        """The products with one of these codes or GTIN-14s."""


class InvoiceRepository(Protocol):
    async def digests(self, invoice_ids: Iterable[str]) -> dict[str, str]: ...

    async def dealers(self, invoice_ids: Iterable[str]) -> dict[str, str]: ...

    async def add(self, invoice: InvoiceIn, moment: datetime) -> None: ...


class PaymentRepository(Protocol):
    async def digests(self, payment_ids: Iterable[str]) -> dict[str, str]: ...

    async def add(self, payment: PaymentIn, moment: datetime) -> None: ...


class ReturnRepository(Protocol):
    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]: ...

    async def mark_credited(self, return_id: str, invoice_id: str) -> None: ...


class OrderUnitOfWork(Protocol):
    stock: StockRepository
    accepted_flow: AcceptedFlowRepository
    accounts: AccountRepository
    rebate_credits: RebateCreditRepository
    shipments: ShipmentRepository
    orders: OrderRepository
    products: ProductRepository
    invoices: InvoiceRepository
    payments: PaymentRepository
    returns: ReturnRepository
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
