"""Registrations (报备), the HQ conflicts between them, follow-up notes and the funnel.
Pure Python.

One active claim per customer × product line: a registration that *holds the slot*
(``holds_slot``) is the one the database lets exist for its ``slot`` key; a second
holder of the same key is refused by the store (``SlotTaken``), whatever the timing."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime

from services.registration.domain.customers import Claim, CustomerInput, DuplicateCheck
from services.registration.domain.rules import Status, active_key
from shared.scope import Scope


class Source(enum.IntEnum):
    """Where the customer came from (incentive rates differ by it)."""

    UNSPECIFIED = 0
    DEALER_SOURCED = 1
    HQ_LEAD = 2


@dataclass(frozen=True)
class Registration:
    id: str
    customer_id: str
    customer_name: str
    dealer_id: str
    product_line: str
    status: Status
    # True while this registration is the one active claim on its slot.
    holds_slot: bool
    submitted_at: datetime
    submitted_by: str = ""
    region_code: str = ""
    source: Source = Source.DEALER_SOURCED
    lead_id: str = ""
    client_request_id: str = ""
    # The channel manager expected to decide.
    approver_user_id: str = ""
    decided_at: datetime | None = None
    decided_by: str = ""
    decision_note: str = ""
    approved_at: datetime | None = None
    protected_until: datetime | None = None
    renewal_count: int = 0
    stage: str = ""
    next_step: str = ""
    # Set while the registration is part of an open conflict.
    conflict_id: str = ""
    department: str = ""
    # The duplicate check captured at submission.
    evidence: DuplicateCheck | None = None
    updated_at: datetime | None = None

    @property
    def slot(self) -> str:
        return active_key(self.customer_id, self.product_line)

    def claim(self) -> Claim:
        return Claim(self.id, self.dealer_id, self.product_line, self.status,
                     self.submitted_at, self.protected_until)

    def seen_by(self, viewer: Scope) -> Registration:
        """As ``viewer`` may see it: other dealers' ids in the evidence blanked."""
        if self.evidence is None or viewer.all_dealers:
            return self
        return replace(self, evidence=self.evidence.seen_by(viewer))


@dataclass(frozen=True)
class SubmitRegistration:
    """A dealer's registration of an existing customer (``customer_id``) or of a new
    one (``new_customer``)."""

    product_line: str
    dealer_id: str = ""
    customer_id: str = ""
    new_customer: CustomerInput | None = None
    department: str = ""
    note: str = ""
    # Repeating a request with the same key returns the first result.
    client_request_id: str = ""


@dataclass(frozen=True)
class Submitted:
    registration: Registration
    auto_approved: bool = False


@dataclass(frozen=True)
class Renewed:
    registration: Registration
    previous_protected_until: datetime | None


@dataclass(frozen=True)
class RegistrationQuery:
    dealer_id: str = ""
    customer_id: str = ""
    product_line: str = ""
    statuses: frozenset[Status] = frozenset()
    region_code: str = ""
    approver_user_id: str = ""
    stage: str = ""


@dataclass(frozen=True)
class RegistrationFilter:
    """Which registrations a list shows; ``dealer_ids`` comes from the viewer's scope
    (None: every dealer)."""

    dealer_ids: frozenset[str] | None = None
    query: RegistrationQuery = RegistrationQuery()
    # Only approved registrations whose protection ends by then, soonest first.
    protected_by: datetime | None = None


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Conflict:
    """HQ's review of claims that may name the same customer for one product line."""

    id: str
    customer_id: str
    product_line: str
    status: ConflictStatus
    raised_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str = ""
    winning_registration_id: str = ""
    resolution_note: str = ""

    @property
    def open_key(self) -> str | None:
        """At most one open conflict per slot."""
        if self.status != ConflictStatus.OPEN:
            return None
        return active_key(self.customer_id, self.product_line)


@dataclass(frozen=True)
class ConflictView:
    conflict: Conflict
    # The registrations in the conflict (each with its evidence).
    claims: tuple[Registration, ...]


@dataclass(frozen=True)
class ConflictQuery:
    status: ConflictStatus | None = None
    region_code: str = ""
    product_line: str = ""
    dealer_id: str = ""


@dataclass(frozen=True)
class ConflictFilter:
    query: ConflictQuery = ConflictQuery()
    dealer_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class Note:
    id: str
    registration_id: str
    text: str
    stage: str
    created_at: datetime
    created_by: str
    next_step: str = ""
    next_step_due: str = ""  # "YYYY-MM-DD" or empty


@dataclass(frozen=True)
class AdvanceStage:
    registration_id: str
    stage: str
    note: str = ""
    next_step: str = ""


@dataclass(frozen=True)
class AddNote:
    registration_id: str
    text: str
    next_step: str = ""
    next_step_due: str = ""


class FunnelDimension(enum.Enum):
    WHOLE = "whole"  # one group: the whole scope
    REGION = "region"
    DEALER = "dealer"
    PRODUCT_LINE = "product_line"


@dataclass(frozen=True)
class FunnelQuery:
    group_by: FunnelDimension = FunnelDimension.WHOLE
    region_code: str = ""
    dealer_id: str = ""
    product_line: str = ""
    # Approved within, "YYYY-MM-DD" inclusive; empty for an open end.
    approved_from: str = ""
    approved_to: str = ""


@dataclass(frozen=True)
class FunnelFilter:
    group_by: FunnelDimension
    dealer_ids: frozenset[str] | None
    region_code: str = ""
    dealer_id: str = ""
    product_line: str = ""
    approved_from: date | None = None
    approved_to: date | None = None


@dataclass(frozen=True)
class StageCount:
    key: str  # region code, dealer id or product line ("" for the whole scope)
    stage: str
    count: int


@dataclass(frozen=True)
class FunnelGroup:
    key: str
    label: str
    # (stage, approved registrations at it), in stage order.
    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Funnel:
    stages: tuple[str, ...]
    groups: tuple[FunnelGroup, ...]


@dataclass(frozen=True)
class Notice:
    """A notice for a dealer (conflict raised or decided, lead assigned, registration
    decided or expired), published for the notification channel to deliver."""

    dealer_id: str
    kind: str
    message: str
    registration_id: str = ""
    conflict_id: str = ""
    lead_id: str = ""


class SlotTaken(Exception):
    """Another registration already holds the customer × product line slot."""


class RequestRepeated(Exception):
    """The dealer already sent a registration with this client request id."""


class AlreadyStored(Exception):
    """A concurrent change stored the same unique thing first (a customer's name or
    credit code, an open conflict on the slot); looking again finds it."""
