"""The flow service's tables. Only this service reads or writes them.

Its own data: uploads (with their stored files and error lists in ``upload_blobs``),
accepted flow rows and serial moves, diversions, closed periods, per-dealer column
mappings and ledger versions. Projections built from other services' events: products,
customers, dealers, authorizations, shipment lines, stock and shipped serials."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION

_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)


class UploadRow(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        UniqueConstraint("dealer_id", "client_request_id", name="uq_uploads_client_request"),
        Index("ix_uploads_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # NULL when the client sent none (NULLs never collide in the unique constraint).
    client_request_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    header_row: Mapped[int] = mapped_column(Integer, default=0)
    sheet_name: Mapped[str] = mapped_column(String(100), default="")
    mapping: Mapped[list] = mapped_column(JSON, default=list)
    replaces_upload_id: Mapped[str] = mapped_column(String(36), default="")
    superseded_by_upload_id: Mapped[str] = mapped_column(String(36), default="")
    total_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    processed_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    error_counts: Mapped[dict] = mapped_column(JSON, default=dict)
    unknown_headers: Mapped[list] = mapped_column(JSON, default=list)
    failure_message: Mapped[str] = mapped_column(Text, default="")
    total_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    transfer_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    validation_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                                   nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str] = mapped_column(String(100), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UploadBlobRow(Base):
    """Stored files in chunks, so every replica can read them: the uploaded file
    ("source") and the error list ("errors", Parquet)."""

    __tablename__ = "upload_blobs"

    upload_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ColumnMappingRow(Base):
    __tablename__ = "column_mappings"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # header key → FlowColumn value
    mapping: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DealerLedgerRow(Base):
    """Bumped by everything that changes what a dealer holds; an upload is accepted
    only if its dealer's version is still the one its validation read."""

    __tablename__ = "dealer_ledgers"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class PeriodCloseRow(Base):
    __tablename__ = "period_closes"

    closed_through: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_by: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FlowRowRow(Base):
    __tablename__ = "flow_rows"
    __table_args__ = (
        Index("ix_flow_rows_dealer_batch", "dealer_id", "gtin", "batch"),
        Index("ix_flow_rows_dealer_day", "dealer_id", "sold_on"),
        Index("ix_flow_rows_transfer", "transfer_to_dealer_id", "gtin", "batch"),
    )

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(String(36), index=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    # False once the upload is superseded.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    row_number: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_name: Mapped[str] = mapped_column(String(255))
    transfer_to_dealer_id: Mapped[str] = mapped_column(String(36))
    department: Mapped[str] = mapped_column(String(100))
    product_code: Mapped[str] = mapped_column(String(64), index=True)
    gtin: Mapped[str] = mapped_column(String(14))
    product_line: Mapped[str] = mapped_column(String(64))
    batch: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    serials: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    sold_on: Mapped[date] = mapped_column(Date)
    shipment_id: Mapped[str] = mapped_column(String(64))


class SerialMoveRow(Base):
    """A serial leaving a dealer in accepted flow: sold (transfer_to empty) or
    transferred to a sub-dealer. Deleted when its upload is superseded."""

    __tablename__ = "serial_moves"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    transfer_to_dealer_id: Mapped[str] = mapped_column(String(36))
    upload_id: Mapped[str] = mapped_column(String(36), index=True)


class DiversionRow(Base):
    __tablename__ = "diversions"
    __table_args__ = (
        Index("ix_diversions_open", "selling_dealer_id", "gtin", "batch", "shipped_dealer_id",
              "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(36))
    row_number: Mapped[int] = mapped_column(Integer)
    selling_dealer_id: Mapped[str] = mapped_column(String(36))
    shipped_dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    batch: Mapped[str] = mapped_column(String(64))
    serials: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_name: Mapped[str] = mapped_column(String(255))
    sold_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    shipment_id: Mapped[str] = mapped_column(String(64))
    ship_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[str] = mapped_column(String(64), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# ---- projections --------------------------------------------------------------------


class ProductRow(Base):
    __tablename__ = "products"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    product_line: Mapped[str] = mapped_column(String(64))
    serial_tracked: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerRow(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    normalized_name: Mapped[str] = mapped_column(String(255), index=True)
    city_code: Mapped[str] = mapped_column(String(6))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    departments: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    merged_into: Mapped[str] = mapped_column(String(36), default="", server_default="")


class DealerRow(Base):
    __tablename__ = "dealers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    platform_dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    is_platform: Mapped[bool] = mapped_column(Boolean, default=False)
    division_codes: Mapped[list] = mapped_column(JSON, default=list)
    city_code: Mapped[str] = mapped_column(String(6), default="")
    region_code: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AuthorizationRow(Base):
    __tablename__ = "authorizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    product_line: Mapped[str] = mapped_column(String(64), default="")
    product_code: Mapped[str] = mapped_column(String(64), default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ShipmentLineRow(Base):
    __tablename__ = "shipment_lines"

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    batch: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    quantity: Mapped[int] = mapped_column(BigInteger)
    # Set by the receipt: what arrived in good condition.
    received: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ship_date: Mapped[date] = mapped_column(Date)
    received_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class StockRow(Base):
    __tablename__ = "stock"
    __table_args__ = (Index("ix_stock_batch", "gtin", "batch"),)

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    returned: Mapped[int] = mapped_column(BigInteger, default=0)
    first_reached_on: Mapped[date] = mapped_column(Date)
    first_shipment_id: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date | None] = mapped_column(Date, nullable=True)


class ShippedSerialRow(Base):
    __tablename__ = "shipped_serials"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    batch: Mapped[str] = mapped_column(String(64))
    shipment_id: Mapped[str] = mapped_column(String(64))
    ship_date: Mapped[date] = mapped_column(Date)
