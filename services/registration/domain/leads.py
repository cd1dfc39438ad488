"""The HQ lead pool (公海): leads, their assignment and claim. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.registration.domain.registrations import Registration
from services.registration.domain.rules import LeadStatus


@dataclass(frozen=True)
class LeadInput:
    """A lead as HQ enters it: a known customer, or a name and an address (or division)."""

    customer_id: str = ""
    customer_name: str = ""
    address: str = ""
    division_code: str = ""
    product_line: str = ""
    department: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    note: str = ""


@dataclass(frozen=True)
class Lead:
    id: str
    customer_name: str
    division_code: str
    product_line: str
    status: LeadStatus
    created_at: datetime
    created_by: str = ""
    customer_id: str = ""
    address: str = ""
    department: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    note: str = ""
    assigned_dealer_id: str = ""
    assigned_at: datetime | None = None
    # The dealer claims before this or the lead returns to the pool.
    claim_deadline: datetime | None = None
    claimed_at: datetime | None = None
    claimed_by: str = ""
    registration_id: str = ""
    return_count: int = 0


@dataclass(frozen=True)
class LeadQuery:
    statuses: frozenset[LeadStatus] = frozenset()
    assigned_dealer_id: str = ""
    division_code: str = ""
    product_line: str = ""


@dataclass(frozen=True)
class LeadFilter:
    query: LeadQuery = LeadQuery()
    # The viewer's dealers (None: every dealer); ``with_pool``: also unassigned leads.
    dealer_ids: frozenset[str] | None = None
    with_pool: bool = False


@dataclass(frozen=True)
class Claimed:
    lead: Lead
    registration: Registration
