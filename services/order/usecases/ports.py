"""What the order use cases need from the world, as protocols: the unit of work with its
repositories, identity (a dealer's tier), the statement spreadsheet; and ``Deps``, the
bundle bootstrap.py wires. The adapters implement them over SQL (adapters/), gRPC
(adapters/identity.py) and openpyxl (adapters/export.py); tests/service/order/fakes.py
implements them in memory.

The stores enforce what the database does: a part of an accepted upload is recorded
once (``record_part`` answers False the second time), so the same part never moves
stock twice even if it were delivered under another event id; one order per dealer and
client reference (``RefTaken``), one return per dealer and client request id
(``ReturnRepeated``), one product per GTIN (``GtinTaken``). ``get(..., for_update=True)``
locks the row until the transaction ends. Conditional changes (``decide``, ``cancel``,
``resolve``, ``confirm``) answer False when the row is no longer in the state they
expect, so of two racing callers exactly one wins."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Self

from services.order.domain.accounts import Account, AccountFilter, RebateCredit
from services.order.domain.fulfilment import (
    Discrepancy,
    DiscrepancyQuery,
    Receipt,
    Shipment,
    ShipmentLine,
    ShipmentQuery,
)
from services.order.domain.ingest import (
    InvoiceIn,
    OrderLineState,
    OrderShipping,
    PaymentIn,
    ProductIdentity,
    RecordedShipment,
    ReturnToCredit,
)
from services.order.domain.inventory import (
    ProductStock,
    Stock,
    StockKey,
    StockMove,
    StockQuery,
)
from services.order.domain.orders import (
    Approval,
    CatalogEntry,
    DealerMonthOrders,
    Order,
    OrderQuery,
    OrderStatus,
    PriceList,
    PriceListQuery,
    Product,
    Stage,
)
from services.order.domain.returns import (
    BatchStock,
    ProductReturn,
    ReturnLineInput,
    ReturnQuery,
)
from services.order.domain.statements import (
    DueItem,
    Entry,
    ExportedFile,
    IssuedLine,
    LedgerQuery,
    Statement,
    StatementQuery,
)
from shared.clock import Clock
from shared.ids import IdSource
from shared.money import Money
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


class StockRepository(Protocol):
    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        """Add the moves' quantities to their positions (creating a position first
        named), in one statement."""

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]: ...

    async def adjust(self, dealer_id: str, changes: dict[tuple[str, str], tuple[int, int]],
                     moment: datetime) -> None:
        """Add (received, returned) to the dealer's positions (product code, batch) that
        exist."""

    async def expiries(self, dealer_id: str) -> dict[tuple[str, str], str]:
        """(product code, batch) → expiry date of the dealer's positions."""

    async def page(self, query: StockQuery, page: PageRequest) -> Page[Stock]:
        """By dealer, product, batch; only positions with stock on hand unless
        ``include_empty``."""


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

    async def exposures(self, keys: Sequence[tuple[str, str]]
                        ) -> dict[tuple[str, str], tuple[int, int]]:
        """(outstanding, open orders) from the running exposure, per (dealer, company);
        accounts without exposure yet are absent."""

    async def credit_figures(self, dealer_id: str, company: str) -> tuple[int, int, int]:
        """(outstanding, open orders, credit limit), the exposure locked until the
        transaction ends so two submissions cannot both spend the same headroom."""

    async def add_outstanding(self, dealer_id: str, company: str, amount_minor: int) -> None:
        ...

    async def add_open_orders(self, dealer_id: str, company: str, amount_minor: int) -> None:
        ...

    async def dues(self, keys: Sequence[tuple[str, str]]
                   ) -> dict[tuple[str, str], tuple[list[DueItem], int]]:
        """Per (dealer, company): the account's invoices (due date, amount) and the
        total of everything that settles them (credit notes, payments, rebate credits),
        for what is overdue; accounts with neither are absent."""


class RebateCreditRepository(Protocol):
    async def add(self, credit: RebateCredit, moment: datetime) -> bool:
        """False (and nothing stored) when the credit id is booked already."""


class ShipmentRepository(Protocol):
    async def get(self, shipment_id: str) -> Shipment | None:
        """With its lines."""

    async def page(self, query: ShipmentQuery, page: PageRequest) -> Page[Shipment]:
        """Latest ship date first, with their lines."""

    async def save_receipt(self, shipment: Shipment) -> None:
        """The lines' received and damaged counts and notes; the shipment received."""

    async def lines_of_batch(self, shipment_id: str, dealer_id: str, product_code: str,
                             batch: str) -> list[ShipmentLine]:
        """The shipment's lines (to this dealer) of one product batch, by line number."""

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
    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None: ...

    async def by_ref(self, dealer_id: str, client_order_ref: str) -> Order | None: ...

    async def add(self, order: Order) -> None:
        """``RefTaken`` when the dealer's client reference is taken."""

    async def save(self, order: Order) -> None:
        """The order's status and time of change, its lines' closed quantities."""

    async def decide(self, order_id: str, stage: Stage, decision: OrderStatus,
                     next_stage: Stage, reason: str, moment: datetime) -> bool:
        """Record a decision if the order is still submitted and awaiting ``stage``."""

    async def add_approval(self, order_id: str, approval: Approval) -> None: ...

    async def cancel(self, order_id: str, reason: str, moment: datetime) -> bool:
        """Cancel if nothing is shipped yet (status submitted or approved)."""

    async def page(self, query: OrderQuery, page: PageRequest) -> Page[Order]:
        """Newest first, counted."""

    async def add_to_line(self, order_id: str, line_no: int, **quantities: int) -> None:
        """Add to the line's quantity_* columns named."""

    async def shipping(self, order_ids: Iterable[str]) -> tuple[
            dict[str, OrderShipping], dict[tuple[str, int], OrderLineState]]:
        """The orders (locked until the transaction ends) and their lines."""

    async def add_shipped(self, quantities: dict[tuple[str, int], int]) -> None:
        """Add to the shipped quantity of (order id, line no)."""

    async def set_statuses(self, statuses: dict[str, OrderStatus], moment: datetime) -> None:
        ...

    async def refresh_exposure(self, order_ids: Iterable[str]) -> None:
        """Recompute what these orders add to their accounts' open-order figure (after a
        change to their status or to their lines' ordered, closed or invoiced
        quantities)."""


class ProductRepository(Protocol):
    async def get(self, code: str) -> Product | None: ...

    async def stored(self, codes: Iterable[str]) -> dict[str, Product]:
        """The stored products with these codes, by code (any number of codes)."""

    async def add_many(self, products: Sequence[Product]) -> None:
        """New products, a few statements per thousand. ``GtinTaken`` when another
        product holds one of their GTINs (nothing of the call stored then)."""

    async def save_many(self, products: Sequence[Product]) -> None:
        """Changed products, as ``add_many``."""

    async def page(self, product_line: str, page: PageRequest) -> Page[Product]: ...

    async def priced(self, codes: Iterable[str], tier: int, company: str, on: str
                     ) -> tuple[dict[str, CatalogEntry], dict[str, Money]]:
        """The products, and the unit prices the tier's list valid on the day gives
        those it names (one statement: it runs on every submission)."""

    async def catalog(self, codes: Iterable[str]) -> dict[str, CatalogEntry]: ...

    async def known(self, codes: Iterable[str]) -> set[str]: ...

    async def gtin_owners(self, gtins: Iterable[str]) -> dict[str, str]:
        """GTIN-14 → the code of the product holding it."""

    async def identities(self, codes: Iterable[str],
                         gtins: Iterable[str]) -> list[ProductIdentity]:
        """The products with one of these codes or GTIN-14s."""


class PriceListRepository(Protocol):
    async def get(self, price_list_id: str) -> PriceList | None: ...

    async def find(self, tier: int, company: str, valid_from: str) -> PriceList | None: ...

    async def save(self, price_list: PriceList) -> None:
        """Insert or replace (its items too)."""

    async def page(self, query: PriceListQuery, page: PageRequest,
                   only_tier: int | None = None) -> Page[PriceList]: ...


class ReceiptRepository(Protocol):
    async def exists(self, shipment_id: str) -> bool: ...

    async def add(self, receipt: Receipt) -> None:
        """The receipt and its discrepancies."""


class DiscrepancyRepository(Protocol):
    async def get(self, discrepancy_id: str) -> Discrepancy | None: ...

    async def resolve(self, resolved: Discrepancy) -> bool:
        """Store the resolution if the discrepancy is still open."""

    async def page(self, query: DiscrepancyQuery,
                   page: PageRequest) -> Page[Discrepancy]: ...


class InvoiceRepository(Protocol):
    async def digests(self, invoice_ids: Iterable[str]) -> dict[str, str]: ...

    async def dealers(self, invoice_ids: Iterable[str]) -> dict[str, str]: ...

    async def add(self, invoice: InvoiceIn, moment: datetime) -> None: ...

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[InvoiceIn]:
        """Newest issue date first, counted."""


class PaymentRepository(Protocol):
    async def digests(self, payment_ids: Iterable[str]) -> dict[str, str]: ...

    async def add(self, payment: PaymentIn, moment: datetime) -> None: ...

    async def page(self, query: LedgerQuery, page: PageRequest) -> Page[PaymentIn]:
        """Newest first, counted."""


class ReturnRepository(Protocol):
    async def to_credit(self, return_ids: Iterable[str]) -> dict[str, ReturnToCredit]: ...

    async def mark_credited(self, return_id: str, invoice_id: str) -> None: ...

    async def get(self, return_id: str, *,
                  for_update: bool = False) -> ProductReturn | None: ...

    async def by_request(self, dealer_id: str,
                         client_request_id: str) -> ProductReturn | None: ...

    async def add(self, product_return: ProductReturn) -> None:
        """``ReturnRepeated`` when the dealer's client request id is taken."""

    async def decide(self, decided: ProductReturn) -> bool:
        """Store the decision if the return is still requested."""

    async def save(self, product_return: ProductReturn) -> None:
        """Its status, day received and the lines' received quantities."""

    async def batch_stock(self, dealer_id: str, lines: list[ReturnLineInput]
                          ) -> dict[tuple[str, str], BatchStock]:
        """What the dealer has of each (product, batch) the lines name, its positions
        locked until the transaction ends."""

    async def page(self, query: ReturnQuery, page: PageRequest) -> Page[ProductReturn]:
        """Newest first."""


class StatementRepository(Protocol):
    async def entries(self, dealer_id: str, company: str, end: str) -> list[Entry]:
        """Every ledger entry of the account up to ``end``, plus its orders and shipments
        (for information)."""

    async def supersede(self, dealer_id: str, company: str, start: str,
                        end: str) -> list[str]:
        """Mark the period's statements not superseded yet superseded; their ids."""

    async def add(self, statement: Statement) -> None: ...

    async def get(self, statement_id: str) -> Statement | None: ...

    async def confirm(self, confirmed: Statement) -> bool:
        """Store the confirmation if the statement is still issued."""

    async def save_dispute(self, statement: Statement, line: IssuedLine) -> None: ...

    async def page(self, query: StatementQuery, page: PageRequest) -> Page[Statement]:
        """Newest period first, without lines."""


class StatsRepository(Protocol):
    async def orders_by_month(self, dealer_ids: frozenset[str] | None, first: str,
                              last: str) -> list[DealerMonthOrders]: ...

    async def inventory(self, dealer_ids: frozenset[str] | None, product_line: str,
                        by_dealer: bool) -> list[ProductStock]: ...


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
    price_lists: PriceListRepository
    receipts: ReceiptRepository
    discrepancies: DiscrepancyRepository
    statements: StatementRepository
    stats: StatsRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def write_events(self) -> None:
        """The events recorded so far into the outbox now (a bulk write's parts)."""

    async def commit(self) -> None: ...


class Tiers(Protocol):
    async def tier_of(self, dealer_id: str) -> int:
        """The dealer's DealerTier number (0 when identity has none on record)."""


class StatementExport(Protocol):
    def to_xlsx(self, statement: Statement) -> ExportedFile: ...


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api, consumers and workers to pass
    on."""

    uow: Callable[[], OrderUnitOfWork]
    # A unit of work inside a consumer's transaction (the one holding its inbox row).
    uow_in: Callable[[object], OrderUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
    tiers: Tiers
    export: StatementExport
    # The selling company of requests and events that name none, and the currency of
    # amounts that name none.
    default_company: str
    currency: str
