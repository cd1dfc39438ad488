"""The engagement service's tables. Only this service reads or writes them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)
client_requests_table = idempotency_table(Base.metadata)


class SopRuleRow(Base):
    __tablename__ = "sop_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(64), index=True)
    closing: Mapped[str] = mapped_column(String(64), index=True)
    deadline_minutes: Mapped[int] = mapped_column(Integer)
    assignee_role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Compared and increased by the updates that can race (shared.versioning).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("rule_id", "subject_id", name="uq_tasks_rule_subject"),
        Index("ix_tasks_due", "status", "overdue", "due_at"),
        Index("ix_tasks_subject", "subject_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(36))
    rule_name: Mapped[str] = mapped_column(String(200))
    subject_id: Mapped[str] = mapped_column(String(64))
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    assignee_role: Mapped[str] = mapped_column(String(32))
    assignee_user_id: Mapped[str] = mapped_column(String(36), index=True)
    manager_user_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trigger_event_id: Mapped[str] = mapped_column(String(64))


class PersonRow(Base):
    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON)
    org_unit_id: Mapped[str] = mapped_column(String(36))
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    active: Mapped[bool] = mapped_column(Boolean)


class OrgUnitRow(Base):
    __tablename__ = "org_units"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssignmentRow(Base):
    __tablename__ = "assignments"

    manager_user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    product_line: Mapped[str] = mapped_column(String(64), primary_key=True)


class DealerFactsRow(Base):
    """What the events said about each dealer (its org unit comes from identity)."""

    __tablename__ = "dealer_facts"

    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_flow_upload_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    flow_covered_until: Mapped[date | None] = mapped_column(Date)
    flagged: Mapped[str] = mapped_column(String(16), default="healthy")


class RegistrationRow(Base):
    __tablename__ = "registrations"
    __table_args__ = (Index("ix_registrations_expiring", "open", "expiry_noticed",
                            "protected_until"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    open: Mapped[bool] = mapped_column(Boolean)
    protected_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expiry_noticed: Mapped[bool] = mapped_column(Boolean, default=False)


class StatementRow(Base):
    __tablename__ = "statements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed: Mapped[bool] = mapped_column(Boolean)


class HealthPolicyRow(Base):
    """One row: HQ's current policy."""

    __tablename__ = "health_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[dict] = mapped_column(JSON)


class InboxItemRow(Base):
    __tablename__ = "inbox_items"
    __table_args__ = (
        UniqueConstraint("user_id", "source_key", name="uq_inbox_items_source"),
        Index("ix_inbox_items_user", "user_id", "read_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(String(2000))
    ref_type: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[str] = mapped_column(String(64))
    dealer_id: Mapped[str] = mapped_column(String(36))
    source_key: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
