"""The order service's tables. Only this service reads or writes them."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)
client_requests_table = idempotency_table(Base.metadata)


class ProductRow(Base):
    __tablename__ = "products"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(String(200), default="")
    gtin: Mapped[str] = mapped_column(String(14), unique=True)
    product_line: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(16), default="")
    list_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    serial_tracked: Mapped[bool] = mapped_column(Boolean, default=False,
                                                 server_default=text("false"))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("dealer_id", "client_order_ref", name="uq_orders_dealer_ref"),
        Index("ix_orders_dealer_submitted", "dealer_id", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    # The approval decision; the shipping states are derived from the lines.
    decision: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(24))
    client_order_ref: Mapped[str] = mapped_column(String(64))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    submitted_by: Mapped[str] = mapped_column(String(80))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    selling_company: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # ApprovalStage number of the stage that must decide next; 0 when none is pending.
    # Approvals are conditional UPDATEs on (decision, awaiting_stage): one racer wins.
    awaiting_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    decision_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    note: Mapped[str] = mapped_column(String(500), default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    credit_passed: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=text("false"))
    credit_limit_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credit_outstanding_minor: Mapped[int] = mapped_column(BigInteger, default=0,
                                                          server_default="0")
    credit_open_orders_minor: Mapped[int] = mapped_column(BigInteger, default=0,
                                                          server_default="0")

    # What this order adds to its dealer's credit exposure now (adapters/exposure.py).
    open_value_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    approvals: Mapped[list[OrderApprovalRow]] = relationship(
        order_by="OrderApprovalRow.id", lazy="selectin", cascade="all, delete-orphan")
    lines: Mapped[list[OrderLineRow]] = relationship(
        back_populates="order", order_by="OrderLineRow.line_no", lazy="selectin",
        cascade="all, delete-orphan",
    )


class OrderLineRow(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    product_line: Mapped[str] = mapped_column(String(64))
    quantity_ordered: Mapped[int] = mapped_column(BigInteger)
    quantity_shipped: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_received: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_closed: Mapped[int] = mapped_column(BigInteger, default=0)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    close_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    quantity_returned: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    quantity_invoiced: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Shipped quantity whose receipt the dealer has confirmed (received, damaged or short).
    quantity_receipted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    order: Mapped[OrderRow] = relationship(back_populates="lines")


class OrderApprovalRow(Base):
    __tablename__ = "order_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    stage: Mapped[int] = mapped_column(Integer)
    decision: Mapped[int] = mapped_column(Integer)
    decided_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str] = mapped_column(String(500), default="")


class PriceListRow(Base):
    __tablename__ = "price_lists"
    __table_args__ = (
        UniqueConstraint("tier", "selling_company", "valid_from", name="uq_price_lists_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[int] = mapped_column(Integer)
    selling_company: Mapped[str] = mapped_column(String(64))
    # "YYYY-MM-DD" strings: ISO dates compare correctly as text on every backend.
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_to: Mapped[str] = mapped_column(String(10), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    items: Mapped[list[PriceListItemRow]] = relationship(
        order_by="PriceListItemRow.product_code", lazy="selectin",
        cascade="all, delete-orphan")


class PriceListItemRow(Base):
    __tablename__ = "price_list_items"

    price_list_id: Mapped[str] = mapped_column(ForeignKey("price_lists.id"), primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class DealerAccountRow(Base):
    """Credit limit and terms only: balances are always computed from the ledger
    tables (invoices, payments, rebate credits)."""

    __tablename__ = "dealer_accounts"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    selling_company: Mapped[str] = mapped_column(String(64), primary_key=True)
    credit_limit_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set from the row read under its lock plus one (If-Match compares it first).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ShipmentRow(Base):
    __tablename__ = "shipments"
    __table_args__ = (Index("ix_shipments_dealer_date", "dealer_id", "ship_date"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    ship_date: Mapped[str] = mapped_column(String(10))
    carrier: Mapped[str] = mapped_column(String(100))
    waybill_no: Mapped[str] = mapped_column(String(100))
    # Digest of the header fields: a re-push with another header is a conflict.
    header_hash: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received: Mapped[bool] = mapped_column(Boolean, default=False)


class ShipmentLineRow(Base):
    __tablename__ = "shipment_lines"
    __table_args__ = (Index("ix_shipment_lines_order", "order_id", "order_line_no"),)

    shipment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36))
    order_line_no: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    batch: Mapped[str] = mapped_column(String(64))
    expiry_date: Mapped[str] = mapped_column(String(10))
    production_date: Mapped[str] = mapped_column(String(10))
    # Newline-separated serial numbers ("" when not tracked).
    serials: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(32))
    quantity_received: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_damaged: Mapped[int] = mapped_column(BigInteger, default=0)
    receipt_note: Mapped[str] = mapped_column(String(500), default="")


class ReceiptRow(Base):
    __tablename__ = "receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shipment_id: Mapped[str] = mapped_column(String(64), unique=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[str] = mapped_column(String(80))


class DiscrepancyRow(Base):
    __tablename__ = "discrepancies"
    __table_args__ = (Index("ix_discrepancies_dealer_status", "dealer_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shipment_id: Mapped[str] = mapped_column(String(64), index=True)
    shipment_line_no: Mapped[int] = mapped_column(Integer)
    dealer_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(500), default="")
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by: Mapped[str] = mapped_column(String(80), default="")


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_account", "dealer_id", "selling_company", "issued_on"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[int] = mapped_column(Integer)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    invoice_no: Mapped[str] = mapped_column(String(64))
    issued_on: Mapped[str] = mapped_column(String(10))
    due_on: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    return_id: Mapped[str] = mapped_column(String(36), default="")
    # The InvoiceLine messages, serialized (the ERP's own breakdown).
    lines: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PaymentRow(Base):
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_account", "dealer_id", "selling_company",
                            "received_on"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    received_on: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(100))
    allocations: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RebateCreditRow(Base):
    """Rebate credits booked from the incentive service's RebateCredited events."""

    __tablename__ = "rebate_credits"
    __table_args__ = (Index("ix_rebate_credits_account", "dealer_id", "selling_company"),)

    credit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credited_on: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReturnRow(Base):
    __tablename__ = "returns"
    __table_args__ = (
        UniqueConstraint("dealer_id", "client_request_id", name="uq_returns_dealer_request"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    selling_company: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    client_request_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(80), default="")
    decision_note: Mapped[str] = mapped_column(String(500), default="")
    received_on: Mapped[str] = mapped_column(String(10), default="")
    credit_note_invoice_id: Mapped[str] = mapped_column(String(64), default="")

    lines: Mapped[list[ReturnLineRow]] = relationship(
        order_by="ReturnLineRow.line_no", lazy="selectin", cascade="all, delete-orphan")


class ReturnLineRow(Base):
    __tablename__ = "return_lines"

    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str] = mapped_column(String(14))
    batch: Mapped[str] = mapped_column(String(64))
    expiry_date: Mapped[str] = mapped_column(String(10))
    serials: Mapped[str] = mapped_column(Text)
    quantity_requested: Mapped[int] = mapped_column(BigInteger)
    quantity_received: Mapped[int] = mapped_column(BigInteger, default=0)
    shipment_id: Mapped[str] = mapped_column(String(64), default="")


class StatementRow(Base):
    __tablename__ = "statements"
    __table_args__ = (Index("ix_statements_account", "dealer_id", "selling_company",
                            "period_start"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    selling_company: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[str] = mapped_column(String(10))
    period_end: Mapped[str] = mapped_column(String(10))
    status: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    opening_minor: Mapped[int] = mapped_column(BigInteger)
    total_debit_minor: Mapped[int] = mapped_column(BigInteger)
    total_credit_minor: Mapped[int] = mapped_column(BigInteger)
    closing_minor: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(String(80))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    confirmed_by: Mapped[str] = mapped_column(String(80), default="")
    supersedes_statement_id: Mapped[str] = mapped_column(String(36), default="")

    lines: Mapped[list[StatementLineRow]] = relationship(
        order_by="StatementLineRow.line_no", lazy="selectin", cascade="all, delete-orphan")


class StatementLineRow(Base):
    __tablename__ = "statement_lines"

    statement_id: Mapped[str] = mapped_column(ForeignKey("statements.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[int] = mapped_column(Integer)
    ref_id: Mapped[str] = mapped_column(String(64))
    date: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(300))
    debit_minor: Mapped[int] = mapped_column(BigInteger)
    credit_minor: Mapped[int] = mapped_column(BigInteger)
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    dispute_reason: Mapped[str] = mapped_column(String(500), default="")
    disputed_amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ChannelInventoryRow(Base):
    """Projection: stock per dealer x product x batch. Received grows with each recorded
    shipment (the shipped quantity stands until the receipt is confirmed, then shortages
    and damage come off); returned grows when the ERP confirms a return; sold is fed by
    accepted flow data (the flow service's events, once it publishes them)."""

    __tablename__ = "channel_inventory"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    product_line: Mapped[str] = mapped_column(String(64))
    expiry_date: Mapped[str] = mapped_column(String(10))
    quantity_received: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_sold: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FlowPartRow(Base):
    """A part of an accepted sell-through upload whose stock moves were applied (flow's
    upload.accepted); ``undone_at`` once its upload was superseded and the moves given
    back."""

    __tablename__ = "flow_parts"

    upload_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FlowStockMoveRow(Base):
    """What one part moved at one stock position, kept so a supersession can give it
    back exactly."""

    __tablename__ = "flow_stock_moves"

    upload_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    product_line: Mapped[str] = mapped_column(String(64))
    expiry_date: Mapped[str] = mapped_column(String(10))
    received: Mapped[int] = mapped_column(BigInteger)
    sold: Mapped[int] = mapped_column(BigInteger)


class FlowSupersededRow(Base):
    """An accepted upload replaced by a newer one (flow's upload.superseded)."""

    __tablename__ = "flow_superseded"

    upload_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    superseded_by: Mapped[str] = mapped_column(String(36))
    superseded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditExposureRow(Base):
    """The running credit exposure of a dealer account (adapters/exposure.py): what it
    owes and the value of its open orders, kept with every change to either."""

    __tablename__ = "credit_exposure"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    selling_company: Mapped[str] = mapped_column(String(64), primary_key=True)
    outstanding_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    open_orders_minor: Mapped[int] = mapped_column(BigInteger, default=0)


def to_domain(cls, row, **given):
    """A domain record from a row whose columns carry the record's field names (fields
    in ``given`` are taken from there instead)."""
    return cls(**{f.name: given[f.name] if f.name in given else getattr(row, f.name)
                  for f in dataclasses.fields(cls)})


def of_dealers(statement, column, query):
    """The statement kept to the dealer a query names (``query.dealer_id``) and to the
    dealers in the caller's scope (``query.dealer_ids``; None: every dealer)."""
    if query.dealer_id:
        statement = statement.where(column == query.dealer_id)
    if query.dealer_ids is not None:
        statement = statement.where(column.in_(query.dealer_ids))
    return statement
