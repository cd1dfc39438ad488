"""The registration service's tables. Only this service reads or writes them.

One winner per customer × product line is the database's job: ``registrations.active_key``
is ``"<customer>|<product line>"`` while a registration holds the slot (submitted, under
review or approved) and NULL otherwise, under a UNIQUE constraint (NULLs are distinct on
SQLite and PostgreSQL alike). Conflicts use the same device (``open_key``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
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
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)
client_requests_table = idempotency_table(Base.metadata)


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("city_code", "normalized_name", name="uq_customers_city_name"),
        Index("ix_customers_updated_at", "updated_at"),
        Index("ix_customers_division_code", "division_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    division_code: Mapped[str] = mapped_column(String(6))
    division_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    city_code: Mapped[str] = mapped_column(String(6))
    customer_type: Mapped[int] = mapped_column(Integer, default=1)
    grade: Mapped[str] = mapped_column(String(32), default="")
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(80), default="")
    # "<division>|<street><number>" (shared.names.address), the address evidence.
    address_key: Mapped[str] = mapped_column(String(80), default="", server_default="",
                                             index=True)
    # Compared and increased by the updates that can race (shared.versioning).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class CustomerAliasRow(Base):
    """Normalized aliases, unique per city like names, for the exact alias match."""

    __tablename__ = "customer_aliases"

    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    normalized_alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    # Where the alias came from: "customer" (entered with it), "import:<source>" (an HQ
    # alias list), "merge" and "conflict" (an HQ decision that two were one).
    source: Mapped[str] = mapped_column(String(80), default="", server_default="")


class RegistrationRow(Base):
    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("active_key", name="uq_registrations_active_key"),
        UniqueConstraint("dealer_id", "client_request_id", name="uq_registrations_dealer_request"),
        Index("ix_registrations_dealer_status", "dealer_id", "status"),
        Index("ix_registrations_customer", "customer_id", "product_line"),
        Index("ix_registrations_status_protected", "status", "protected_until"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    customer_name: Mapped[str] = mapped_column(String(200))
    dealer_id: Mapped[str] = mapped_column(String(36))
    region_code: Mapped[str] = mapped_column(String(32), default="")
    product_line: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    active_key: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[int] = mapped_column(Integer, default=1)
    lead_id: Mapped[str] = mapped_column(String(36), default="")
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str] = mapped_column(String(80), default="")
    approver_user_id: Mapped[str] = mapped_column(String(36), default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str] = mapped_column(String(80), default="")
    decision_note: Mapped[str] = mapped_column(Text, default="")
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    protected_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    renewal_count: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(32), default="")
    next_step: Mapped[str] = mapped_column(String(300), default="")
    conflict_id: Mapped[str] = mapped_column(String(36), default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    # Serialized qudao.registration.v1.CheckDuplicatesResponse captured at submission.
    evidence: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConflictRow(Base):
    __tablename__ = "conflicts"
    __table_args__ = (UniqueConstraint("open_key", name="uq_conflicts_open_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    product_line: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    open_key: Mapped[str | None] = mapped_column(String(120))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str] = mapped_column(String(80), default="")
    winning_registration_id: Mapped[str] = mapped_column(String(36), default="")
    resolution_note: Mapped[str] = mapped_column(Text, default="")


class LeadRow(Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_status_deadline", "status", "claim_deadline"),
        Index("ix_leads_assigned_dealer", "assigned_dealer_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36), default="")
    customer_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    division_code: Mapped[str] = mapped_column(String(6))
    product_line: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(100), default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    assigned_dealer_id: Mapped[str] = mapped_column(String(36), default="")
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    registration_id: Mapped[str] = mapped_column(String(36), default="")
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(80), default="")


class NoteRow(Base):
    __tablename__ = "registration_notes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registration_id: Mapped[str] = mapped_column(String(36), index=True)
    text: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(32), default="")
    next_step: Mapped[str] = mapped_column(String(300), default="")
    next_step_due: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(80), default="")


class AuthorizationRow(Base):
    __tablename__ = "authorizations"
    __table_args__ = (
        Index("ix_authorizations_dealer", "dealer_id", "status"),
        Index("ix_authorizations_status_valid_to", "status", "valid_to"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    product_line: Mapped[str] = mapped_column(String(64), default="")
    product_code: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(100), default="")
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_to: Mapped[str] = mapped_column(String(10))
    owner_user_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    status: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[str] = mapped_column(String(80), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str] = mapped_column(String(80), default="")
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    letter_no: Mapped[str] = mapped_column(String(40), unique=True)


class DealerRow(Base):
    """Projection of identity's dealers (org_unit.created / org_unit.updated)."""

    __tablename__ = "dealers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    tier: Mapped[int] = mapped_column(Integer, default=0)
    region_code: Mapped[str] = mapped_column(String(32), default="")
    division_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    product_lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_lead_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ManagerAssignmentRow(Base):
    """Projection of identity's manager ↔ dealer assignments (assignment.changed)."""

    __tablename__ = "manager_assignments"

    manager_user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    product_line: Mapped[str] = mapped_column(String(64), primary_key=True)
