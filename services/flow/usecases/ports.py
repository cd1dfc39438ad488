"""What the flow use cases need from the world, as protocols: the unit of work with its
repositories, the file store and reader, the customer directory, the event replayer,
and ``Deps``, the bundle bootstrap.py wires. adapters/ implements them over SQL and
JetStream; tests/service/flow/fakes.py in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, Self

import polars as pl

from services.flow.domain.columns import FlowColumn
from services.flow.domain.hospitals import CustomerDirectory
from services.flow.domain.model import (
    Authorization,
    Customer,
    Dealer,
    Diversion,
    DiversionFilter,
    FlowRow,
    FlowRowFilter,
    MonthlySales,
    Movement,
    Product,
    SerialMove,
    ShipmentLine,
    ShippedSerial,
    StockEntry,
    Upload,
    UploadFilter,
)
from shared.clock import Clock
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


class UploadRepository(Protocol):
    async def add(self, upload: Upload) -> None: ...

    async def get(self, upload_id: str) -> Upload | None: ...

    async def by_client_request(self, dealer_id: str, key: str) -> Upload | None: ...

    async def save(self, upload: Upload) -> None: ...

    async def claim(self, worker: str, now: datetime, stale_before: datetime) -> Upload | None:
        """Take the oldest queued upload, or one whose validator stopped reporting
        (heartbeat before ``stale_before``), for ``worker``."""
        ...

    async def heartbeat(self, upload_id: str, worker: str, now: datetime,
                        processed_rows: int, total_rows: int) -> bool:
        """False when another worker took the upload over."""
        ...

    async def page(self, which: UploadFilter, page: PageRequest) -> Page[Upload]: ...


class BlobStore(Protocol):
    """Files kept with an upload (the source file, the error list), in chunks."""

    async def put_chunk(self, upload_id: str, kind: str, seq: int, data: bytes) -> None: ...

    def chunks(self, upload_id: str, kind: str) -> AsyncIterator[bytes]: ...

    async def delete(self, upload_id: str, kind: str) -> None: ...


class MappingRepository(Protocol):
    async def get(self, dealer_id: str) -> dict[str, FlowColumn]: ...

    async def save(self, dealer_id: str, mapping: dict[str, FlowColumn], now: datetime) -> None:
        ...


class LedgerRepository(Protocol):
    async def version(self, dealer_id: str) -> int: ...

    async def bump(self, dealer_ids: Iterable[str]) -> None: ...

    async def advance(self, dealer_id: str, expected: int) -> bool:
        """Move the dealer's version on if it is still ``expected`` (under a lock)."""
        ...


class PeriodRepository(Protocol):
    async def closed_through(self) -> date | None: ...

    async def close(self, through: date, by: str, at: datetime) -> None: ...


class FlowRowRepository(Protocol):
    async def add(self, rows: list[FlowRow], currency: str) -> None: ...

    async def deactivate(self, upload_id: str) -> None: ...

    async def movements(self, dealer_id: str, exclude_upload: str
                        ) -> dict[tuple[str, str], Movement]: ...

    async def accepted_keys(self, dealer_id: str, start: date, end: date,
                            exclude_upload: str) -> set[tuple]: ...

    async def serial_moves(self, keys: list[tuple[str, str]], exclude_upload: str
                           ) -> dict[tuple[str, str], list[SerialMove]]: ...

    async def add_serial_moves(self, moves: list[SerialMove]) -> None: ...

    async def delete_serial_moves(self, upload_id: str) -> None: ...

    async def page(self, which: FlowRowFilter, page: PageRequest) -> Page[FlowRow]: ...

    async def monthly_sales(self, which: FlowRowFilter) -> list[MonthlySales]: ...

    def stream(self, which: FlowRowFilter, limit: int) -> AsyncIterator[list[FlowRow]]: ...

    async def of_upload(self, upload_id: str) -> list[FlowRow]: ...

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int: ...


class DiversionRepository(Protocol):
    async def add(self, diversion: Diversion) -> None: ...

    async def get(self, diversion_id: str) -> Diversion | None: ...

    async def open_for(self, selling_dealer_id: str, gtin: str, batch: str,
                       shipped_dealer_id: str) -> Diversion | None: ...

    async def save(self, diversion: Diversion) -> None: ...

    async def page(self, which: DiversionFilter, page: PageRequest) -> Page[Diversion]: ...

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int: ...


class ProjectionRepository(Protocol):
    """The facts flow keeps from other services' events."""

    async def upsert_product(self, product: Product) -> None: ...

    async def products(self) -> list[Product]: ...

    async def upsert_customer(self, customer: Customer, at: datetime) -> None: ...

    async def customers_changed_since(self, since: datetime | None) -> list[Customer]: ...

    async def merge_customer(self, kept: Customer, merged_id: str, at: datetime) -> None:
        """``kept`` as it is now; ``merged_id`` kept as a tombstone pointing at it (so
        every replica's directory drops it) and its authorizations moved over."""

    async def upsert_dealer(self, dealer: Dealer) -> None: ...

    async def dealer(self, dealer_id: str) -> Dealer | None: ...

    async def sub_dealers(self, platform_dealer_id: str) -> list[Dealer]: ...

    async def upsert_authorization(self, authorization: Authorization) -> None: ...

    async def authorizations(self, dealer_id: str) -> list[Authorization]: ...

    async def add_shipment_lines(self, lines: list[ShipmentLine]) -> int:
        """Store new lines (a line seen before is skipped) and add them to stock and
        shipped serials; returns how many were new."""
        ...

    async def receive(self, shipment_id: str, received: dict[int, int], on: date) -> list[str]:
        """Record a receipt (line number → quantity received in good condition);
        returns the dealers whose stock changed."""
        ...

    async def returned(self, dealer_id: str, gtin: str, batch: str, quantity: int,
                       serials: list[str]) -> None: ...

    async def stock(self, dealer_id: str) -> dict[tuple[str, str], StockEntry]: ...

    async def stock_of_batches(self, keys: list[tuple[str, str]]
                               ) -> dict[tuple[str, str], list[StockEntry]]: ...

    async def shipped_serials(self, keys: list[tuple[str, str]]
                              ) -> dict[tuple[str, str], ShippedSerial]: ...

    async def clear(self, projection: str) -> None:
        """Empty a projection's tables (and lock them against its consumer) for a
        rebuild."""
        ...


class FlowUnitOfWork(Protocol):
    uploads: UploadRepository
    blobs: BlobStore
    mappings: MappingRepository
    ledgers: LedgerRepository
    periods: PeriodRepository
    flow_rows: FlowRowRepository
    diversions: DiversionRepository
    projections: ProjectionRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True)
class SourceTable:
    """A stored file read into columns of text: ``frame`` has ``row`` (the row number
    as the user sees it) and ``c0``, ``c1``… in file order."""

    header: list[str]
    header_row: int
    frame: pl.DataFrame
    encoding: int
    # Read from a workbook (XLSX), whose cells may hold formulas.
    spreadsheet: bool = False


class SourceReader(Protocol):
    async def read(self, upload: Upload) -> SourceTable:
        """Raises ``FileProblem`` when the file cannot be read at all."""
        ...


class ErrorReportWriter(Protocol):
    """Reports of text columns; no cell is ever a formula."""

    def xlsx(self, header: list[str], rows: pl.DataFrame) -> bytes: ...

    def csv(self, header: list[str], rows: pl.DataFrame) -> bytes: ...


class Replayer(Protocol):
    async def replay(self, projection: str, uow: FlowUnitOfWork) -> tuple[int, int]:
        """Apply every event of the projection's stream inside ``uow``'s transaction;
        returns (events replayed, rows written)."""
        ...


class Directory(CustomerDirectory, Protocol):
    async def refresh(self) -> int: ...


@dataclass(frozen=True)
class FlowOptions:
    worker_id: str
    fuzzy_threshold_bps: int
    # Product lines that need an authorization; None: all; empty: none.
    authorization_lines: frozenset[str] | None
    max_file_bytes: int
    max_rows: int
    max_columns: int
    chunk_rows: int
    lease_seconds: float
    event_rows_per_part: int


@dataclass(frozen=True)
class Deps:
    uow: Callable[[], FlowUnitOfWork]
    uow_in: Callable[[object], FlowUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
    reader: SourceReader
    reports: ErrorReportWriter
    directory: Directory
    replayer: Replayer
    options: FlowOptions
    # Wakes this replica's validator when an upload is stored.
    wake: Callable[[], None]
