"""Authorizations (授权): HQ's grant to a dealer to sell a product line (or one product)
to a hospital, optionally one department, for a period; and the letter the dealer shows
the hospital. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.registration.domain.rules import AuthStatus


@dataclass(frozen=True)
class Authorization:
    id: str
    dealer_id: str
    customer_id: str
    customer_name: str
    valid_from: str  # "YYYY-MM-DD", inclusive
    valid_to: str
    owner_user_id: str  # the channel manager who owns the grant
    status: AuthStatus
    granted_at: datetime
    letter_no: str
    granted_by: str = ""
    # Exactly one of product_line and product_code.
    product_line: str = ""
    product_code: str = ""
    department: str = ""  # empty: every department
    revoked_at: datetime | None = None
    revoked_by: str = ""
    revoke_reason: str = ""


@dataclass(frozen=True)
class GrantInput:
    dealer_id: str = ""
    product_line: str = ""
    product_code: str = ""
    customer_id: str = ""
    department: str = ""
    valid_from: str = ""
    valid_to: str = ""
    # Defaults to the granting channel manager.
    owner_user_id: str = ""


@dataclass(frozen=True)
class AuthorizationQuery:
    dealer_id: str = ""
    customer_id: str = ""
    product_line: str = ""
    owner_user_id: str = ""
    statuses: frozenset[AuthStatus] = frozenset()
    valid_on: str = ""  # "YYYY-MM-DD": only grants valid that day


@dataclass(frozen=True)
class AuthorizationFilter:
    query: AuthorizationQuery = AuthorizationQuery()
    dealer_ids: frozenset[str] | None = None  # the viewer's dealers; None: every dealer


class ExportFormat(enum.Enum):
    DEFAULT = "default"  # a letter is a PDF unless asked otherwise
    XLSX = "xlsx"
    CSV = "csv"
    PDF = "pdf"


@dataclass(frozen=True)
class Letter:
    letter_no: str
    dealer_name: str
    customer_name: str
    scope: str  # product line or product
    department: str
    valid_from: str
    valid_to: str
    owner: str
    issued_on: str

    def lines(self) -> list[tuple[str, str]]:
        return [("授权书编号 Letter No.", self.letter_no),
                ("被授权经销商 Dealer", self.dealer_name),
                ("授权医院 Hospital", self.customer_name),
                ("授权产品 Products", self.scope),
                ("科室 Department", self.department or "全院 all departments"),
                ("有效期 Valid", f"{self.valid_from} 至 {self.valid_to}"),
                ("渠道经理 Channel manager", self.owner),
                ("出具日期 Issued", self.issued_on)]


@dataclass(frozen=True)
class ExportedFile:
    filename: str
    content_type: str
    content: bytes
