"""The incentive service's tables. Only this service reads or writes them."""

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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)
client_requests_table = idempotency_table(Base.metadata)


class AccrualRow(Base):
    """The ledger: differences booked per line, never updated except when frozen."""

    __tablename__ = "accruals"
    __table_args__ = (
        Index("ix_accruals_unit", "unit_type", "unit_id"),
        Index("ix_accruals_scheme", "scheme_id", "period_start"),
        Index("ix_accruals_open", "selling_company", "settlement_period_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    selling_company: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    unit_type: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[str] = mapped_column(String(160))
    scheme_id: Mapped[str] = mapped_column(String(36))
    scheme_version: Mapped[int] = mapped_column(Integer)
    customer_source: Mapped[str] = mapped_column(String(16))
    product_line: Mapped[str] = mapped_column(String(200))
    tier: Mapped[int] = mapped_column(Integer)
    rate_bps: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    base_minor: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(40))
    cause_id: Mapped[str] = mapped_column(String(160))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settlement_period_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    adjustment: Mapped[bool] = mapped_column(Boolean, default=False)


class UploadPartRow(Base):
    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    part_count: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))
    replaces_upload_id: Mapped[str] = mapped_column(String(64))


class SaleRow(Base):
    """Accepted sell-through rows (flow aggregates them per dealer, product, batch,
    customer and day)."""

    __tablename__ = "sales"
    __table_args__ = (
        Index("ix_sales_dealer_day", "dealer_id", "sold_on"),
        Index("ix_sales_customer", "dealer_id", "customer_id"),
        Index("ix_sales_day", "sold_on"),
    )

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    transfer_to_dealer_id: Mapped[str] = mapped_column(String(36))
    product_code: Mapped[str] = mapped_column(String(64))
    product_line: Mapped[str] = mapped_column(String(64))
    batch: Mapped[str] = mapped_column(String(64))
    sold_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    gtin: Mapped[str] = mapped_column(String(14))


class SupersededUploadRow(Base):
    __tablename__ = "superseded_uploads"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    superseded_by: Mapped[str] = mapped_column(String(64))


class DiversionRow(Base):
    """Diversions flow reported; matched to sales by selling dealer, product and batch."""

    __tablename__ = "diversions"
    __table_args__ = (Index("ix_diversions_dealer_batch", "dealer_id", "batch"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(64))
    dealer_id: Mapped[str] = mapped_column(String(36))
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    batch: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(36))
    sold_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    detected_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_dealer_approved", "dealer_id", "approved_on"),)

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    approved_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    voided: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(String(3))
    # [line_no, product_code, product_line, quantity, amount_minor, quantity_closed]
    lines: Mapped[list] = mapped_column(JSON)


class ReturnRow(Base):
    __tablename__ = "returns"
    __table_args__ = (Index("ix_returns_dealer_received", "dealer_id", "received_on"),)

    return_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    # [line_no, product_code, quantity, shipment_id, batch]
    lines: Mapped[list] = mapped_column(JSON)


class ShipmentLinkRow(Base):
    """A shipment line and the order line it was shipped against (to value returns)."""

    __tablename__ = "shipment_links"

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64))
    batch: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(36))
    order_line_no: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(BigInteger)


class ProductRow(Base):
    __tablename__ = "products"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_line: Mapped[str] = mapped_column(String(64))
    list_price_minor: Mapped[int] = mapped_column(BigInteger)


class RegistrationRow(Base):
    __tablename__ = "registrations"
    __table_args__ = (Index("ix_registrations_dealer_customer", "dealer_id", "customer_id"),)

    registration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    product_line: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    approved_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class LeadEventRow(Base):
    __tablename__ = "lead_events"

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    assigned: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    product_line: Mapped[str] = mapped_column(String(64))


class DealerRow(Base):
    __tablename__ = "dealers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)
    product_lines: Mapped[list] = mapped_column(JSON)
    division_codes: Mapped[list] = mapped_column(JSON)
    tags: Mapped[list] = mapped_column(JSON)
    credit_code: Mapped[str] = mapped_column(String(32), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AssignmentRow(Base):
    __tablename__ = "assignments"

    manager_user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_line: Mapped[str] = mapped_column(String(64), primary_key=True)


class CommissionRuleRow(Base):
    __tablename__ = "commission_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The rule as a document (domain fields); rules are few and read together.
    body: Mapped[dict] = mapped_column(JSON)


class ProgramVersionRow(Base):
    __tablename__ = "program_versions"

    program_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    audience: Mapped[bytes] = mapped_column(LargeBinary)


class ProgramMemberRow(Base):
    __tablename__ = "program_members"

    program_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class TargetRow(Base):
    __tablename__ = "targets"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_line: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    period_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    measure: Mapped[str] = mapped_column(String(32), primary_key=True)
    period_end: Mapped[date] = mapped_column(Date)
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_by: Mapped[str] = mapped_column(String(64))


class ClosedMonthRow(Base):
    """One row per settled month and company: a second close of any of its months
    fails on the primary key, even when two closes race."""

    __tablename__ = "closed_months"

    selling_company: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    settlement_period_id: Mapped[str] = mapped_column(String(36))


class SettlementPeriodRow(Base):
    __tablename__ = "settlement_periods"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    selling_company: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    period_kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    dealer_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str] = mapped_column(String(64))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    settled_by: Mapped[str] = mapped_column(String(64))


class SettlementRow(Base):
    """A dealer's statement in a settlement period; its lines never change."""

    __tablename__ = "settlements"
    __table_args__ = (Index("ix_settlements_dealer", "dealer_id", "period_start"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    settlement_period_id: Mapped[str] = mapped_column(String(36), index=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    period_kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    lines: Mapped[list] = mapped_column(JSON)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    credit_id: Mapped[str] = mapped_column(String(36))
    carried_forward_minor: Mapped[int] = mapped_column(BigInteger)
