"""The identity service's tables. Only this service reads or writes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.bus.outbox import bus_tables
from shared.db import NAMING_CONVENTION
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


outbox_table, inbox_table = bus_tables(Base.metadata)
client_requests_table = idempotency_table(Base.metadata)


class OrgUnitRow(Base):
    __tablename__ = "org_units"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    tier: Mapped[str] = mapped_column(String(16), default="")
    platform_dealer_id: Mapped[str | None] = mapped_column(ForeignKey("org_units.id"))
    region_code: Mapped[str] = mapped_column(String(32), default="", index=True)
    division_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    product_lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Added in 0002.
    city_code: Mapped[str] = mapped_column(String(6), default="", server_default="")
    derived_tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    custom_tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # The grant: a sub-dealer's data is visible to its platform dealer's staff.
    shared_with_platform: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Compared and increased by the updates that can race (shared.versioning).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    org_unit_id: Mapped[str] = mapped_column(ForeignKey("org_units.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Compared and increased by the updates that can race (shared.versioning).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    # SHA-256 of the token: a leaked table does not leak sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssignmentRow(Base):
    __tablename__ = "assignments"

    manager_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    product_line: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_by: Mapped[str] = mapped_column(String(100), default="", server_default="")


class AuditRow(Base):
    """Who changed what, when, with the target before and after (JSON snapshots)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str] = mapped_column(Text, default="")
    after_json: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")


class NoticeRow(Base):
    """A published notice. Its audience is kept as given (the expression as JSON, the
    named dealers, the publishing region's codes) and judged when read."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    must_confirm: Mapped[bool] = mapped_column(Boolean)
    in_force_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expression: Mapped[dict | None] = mapped_column(JSON)
    dealer_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    reached_dealer_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{id, filename, content_type, size_bytes}]; the contents are notice_attachments.
    attachments: Mapped[list[dict]] = mapped_column(JSON, default=list)
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class NoticeAttachmentRow(Base):
    __tablename__ = "notice_attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id"), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class NoticeReceiptRow(Base):
    """A dealer user's first read of a notice and their confirmation."""

    __tablename__ = "notice_receipts"

    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    dealer_id: Mapped[str] = mapped_column(String(36))
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaterialRow(Base):
    """A library material; its versions' descriptions as JSON, their files in
    material_files."""

    __tablename__ = "materials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32))
    expression: Mapped[dict | None] = mapped_column(JSON)
    dealer_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{number, filename, content_type, size_bytes, note, published_by, published_at}]
    versions: Mapped[list[dict]] = mapped_column(JSON, default=list)
    published_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class MaterialFileRow(Base):
    __tablename__ = "material_files"

    material_id: Mapped[str] = mapped_column(ForeignKey("materials.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class MaterialDownloadRow(Base):
    __tablename__ = "material_downloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    material_id: Mapped[str] = mapped_column(ForeignKey("materials.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(36))
    dealer_id: Mapped[str] = mapped_column(String(36), index=True)
    downloaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInSourceRow(Base):
    """One address's sign-in history with one account (by the name's digest)."""

    __tablename__ = "sign_in_sources"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_attempts: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    trusted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SignInWindowRow(Base):
    """Password checks of one account in one clock minute."""

    __tablename__ = "sign_in_windows"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True,
                                                   index=True)
    checks: Mapped[int] = mapped_column(Integer)
