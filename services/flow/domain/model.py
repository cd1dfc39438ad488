"""The flow service's model: uploads and their progress, accepted flow rows, diversions,
and the facts it projects from other services (dealers, catalog, customers,
authorizations, shipped stock). Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from services.flow.domain.checks import Check
from services.flow.domain.columns import FlowColumn
from shared.money import Money


class UploadStatus(enum.IntEnum):
    """Numbered as UploadStatus in flow.proto."""

    QUEUED = 1
    VALIDATING = 2
    ACCEPTED = 3
    REJECTED = 4
    FAILED = 5
    SUPERSEDED = 6

    @property
    def finished(self) -> bool:
        return self not in (UploadStatus.QUEUED, UploadStatus.VALIDATING)


class FileFormat(enum.IntEnum):
    UNSPECIFIED = 0
    CSV = 1
    XLSX = 2


class Encoding(enum.IntEnum):
    UNSPECIFIED = 0
    UTF8 = 1
    GBK = 2
    GB18030 = 3


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None

    def contains(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class MappingEntry:
    column: FlowColumn
    header: str = ""
    position: int = 0


@dataclass(frozen=True)
class Upload:
    id: str
    dealer_id: str
    filename: str
    format: FileFormat
    encoding: Encoding
    status: UploadStatus
    size_bytes: int
    sha256: str
    period: Period
    uploaded_by: str
    uploaded_at: datetime
    client_request_id: str = ""
    header_row: int = 0
    sheet_name: str = ""
    mapping: tuple[MappingEntry, ...] = ()
    replaces_upload_id: str = ""
    superseded_by_upload_id: str = ""
    total_rows: int = 0
    processed_rows: int = 0
    failed_rows: int = 0
    error_counts: dict[Check, int] = field(default_factory=dict)
    unknown_headers: tuple[str, ...] = ()
    failure_message: str = ""
    total_quantity: int = 0
    total_amount: Money = field(default_factory=Money.zero)
    transfer_rows: int = 0
    validation_started_at: datetime | None = None
    finished_at: datetime | None = None
    # Which worker holds the validation, and when it last said so.
    worker: str = ""
    heartbeat_at: datetime | None = None

    @property
    def progress_percent(self) -> int:
        if self.status.finished:
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed_rows * 100 // self.total_rows)

    def evolve(self, **changes) -> Upload:
        return replace(self, **changes)


@dataclass(frozen=True)
class UploadFilter:
    dealer_ids: frozenset[str] | None = None
    statuses: frozenset[UploadStatus] = frozenset()
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None


# ---- projected facts -------------------------------------------------------------


@dataclass(frozen=True)
class Dealer:
    id: str
    name: str
    platform_dealer_id: str = ""
    is_platform: bool = False
    division_codes: tuple[str, ...] = ()
    city_code: str = ""
    region_code: str = ""
    active: bool = True


@dataclass(frozen=True)
class Product:
    code: str
    gtin: str
    name: str = ""
    product_line: str = ""
    serial_tracked: bool = False


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    normalized_name: str
    city_code: str
    aliases: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    # Set once HQ folded this customer into another: names no longer resolve to it.
    merged_into: str = ""


@dataclass(frozen=True)
class Authorization:
    id: str
    dealer_id: str
    customer_id: str
    product_line: str = ""
    product_code: str = ""
    department: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    active: bool = True

    def covers(self, product_line: str, product_code: str, customer_id: str,
               department: str, day: date) -> bool:
        return (self.active and self.customer_id == customer_id
                and ((self.product_line and self.product_line == product_line)
                     or (self.product_code and self.product_code == product_code))
                and (not self.department or self.department == department)
                and (self.valid_from is None or self.valid_from <= day)
                and (self.valid_to is None or day <= self.valid_to))


@dataclass(frozen=True)
class ShipmentLine:
    """One shipped line as order's events describe it."""

    shipment_id: str
    line_no: int
    dealer_id: str
    product_code: str
    gtin: str
    batch: str
    expiry: date | None
    quantity: int
    ship_date: date
    serials: tuple[str, ...] = ()


@dataclass(frozen=True)
class StockEntry:
    """What reached one dealer of one GTIN and batch from the ERP: shipped (less what
    the receipt found short or damaged) and returned to the manufacturer."""

    dealer_id: str
    gtin: str
    batch: str
    received: int
    returned: int
    first_reached_on: date
    first_shipment_id: str
    expiry: date | None = None


@dataclass(frozen=True)
class ShippedSerial:
    gtin: str
    serial: str
    dealer_id: str
    batch: str
    shipment_id: str
    ship_date: date


@dataclass(frozen=True)
class Movement:
    """Accepted flow of one dealer, GTIN and batch: sold (and transferred out), and
    transferred in from the platform dealer, with the first day of a transfer in."""

    gtin: str
    batch: str
    out: int = 0
    transferred_in: int = 0
    first_transfer_on: date | None = None
    transfer_shipment_id: str = ""


@dataclass(frozen=True)
class SerialMove:
    gtin: str
    serial: str
    dealer_id: str
    transfer_to_dealer_id: str
    upload_id: str


# ---- accepted flow ---------------------------------------------------------------


@dataclass(frozen=True)
class FlowRow:
    """Accepted sell-through, aggregated per dealer × product × batch × customer (or
    transfer dealer) × department × day."""

    upload_id: str
    dealer_id: str
    row_number: int
    row_count: int
    customer_id: str
    customer_name: str
    transfer_to_dealer_id: str
    department: str
    product_code: str
    gtin: str
    product_line: str
    batch: str
    expiry: date | None
    serials: tuple[str, ...]
    quantity: int
    amount: Money
    sold_on: date
    shipment_id: str


@dataclass(frozen=True)
class FlowRowFilter:
    dealer_ids: frozenset[str] | None = None
    product_code: str = ""
    gtin: str = ""
    batch: str = ""
    customer_id: str = ""
    upload_id: str = ""
    sold_from: date | None = None
    sold_to: date | None = None


@dataclass(frozen=True)
class MonthlySales:
    """Accepted sales to customers of one dealer in one month ("YYYY-MM")."""

    dealer_id: str
    month: str
    quantity: int
    amount: Money


# ---- diversion -------------------------------------------------------------------


class DiversionStatus(enum.IntEnum):
    OPEN = 1
    CONFIRMED = 2
    DISMISSED = 3


@dataclass(frozen=True)
class Diversion:
    id: str
    upload_id: str
    row_number: int
    selling_dealer_id: str
    shipped_dealer_id: str
    product_code: str
    gtin: str
    batch: str
    serials: tuple[str, ...]
    quantity: int
    customer_id: str
    customer_name: str
    sold_on: date | None
    shipment_id: str
    ship_date: date | None
    status: DiversionStatus
    detected_at: datetime
    resolution_note: str = ""
    resolved_by: str = ""
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class DiversionFilter:
    shipped_dealer_ids: frozenset[str] | None = None
    selling_dealer_id: str = ""
    shipped_dealer_id: str = ""
    gtin: str = ""
    batch: str = ""
    status: DiversionStatus | None = None
    detected_after: datetime | None = None
    detected_before: datetime | None = None
