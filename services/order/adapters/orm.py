"""The order service's tables. Only this service reads or writes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)


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

    order: Mapped[OrderRow] = relationship(back_populates="lines")
