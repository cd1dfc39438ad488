"""What the registration use cases need from the world, as protocols: the unit of work
with its repositories, identity (a dealer not projected yet), the name index, address
placement, letter rendering; and ``Deps``, the bundle bootstrap.py wires. The adapters
implement them over SQL, gRPC, cpca and openpyxl; tests/service/registration/fakes.py
implements the stores in memory.

The stores enforce what the database does: one registration holding a customer ×
product line slot (``SlotTaken``), one registration per dealer and client request id
(``RequestRepeated``), one customer per city and normalized name and per credit code,
one open conflict per slot (``AlreadyStored``). ``get(..., for_update=True)`` locks the
row until the transaction ends, so a read-check-write cannot interleave with another."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, Self

from services.registration.domain.authorizations import (
    Authorization,
    AuthorizationFilter,
    Letter,
)
from services.registration.domain.customers import (
    Customer,
    CustomerQuery,
    CustomerVisibility,
    NameEntry,
    Placement,
)
from services.registration.domain.dealers import Assignment, DealerFacts
from services.registration.domain.leads import Lead, LeadFilter
from services.registration.domain.registrations import (
    Conflict,
    ConflictFilter,
    FunnelFilter,
    Note,
    Registration,
    RegistrationFilter,
    StageCount,
)
from services.registration.domain.rules import DealerView, Policy
from shared.clock import Clock
from shared.ids import IdSource
from shared.names.matching import Match
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.uow import EventLog


class CustomerRepository(Protocol):
    async def get(self, customer_id: str) -> Customer | None: ...

    async def get_many(self, customer_ids: Iterable[str]) -> dict[str, Customer]: ...

    async def add(self, customer: Customer) -> None:
        """Also its aliases (an alias another customer of the city has is skipped).
        ``AlreadyStored`` when the city and normalized name or the credit code is
        taken."""

    async def save(self, customer: Customer, alias_source: str = "customer") -> int:
        """Stored if still at ``customer.version`` (StaleVersion otherwise); the new
        version. Aliases the customer had keep their source; new ones get
        ``alias_source``."""

    async def remove(self, customer_id: str) -> None:
        """The customer and its aliases (a merged customer)."""

    async def alias_sources(self, customer_id: str) -> dict[str, str]: ...

    async def ids_with_credit_code(self, credit_code: str) -> list[str]: ...

    async def ids_named(self, city_code: str, normalized_name: str) -> list[str]: ...

    async def ids_with_alias(self, city_code: str, normalized_alias: str) -> list[str]: ...

    async def ids_named_anywhere(self, normalized_name: str, city_code: str = "") -> list[str]:
        """Customers with this normalized name in any city (or in ``city_code``)."""

    async def page(self, query: CustomerQuery, page: PageRequest,
                   visible: CustomerVisibility | None = None) -> Page[Customer]: ...

    async def tied_dealers(self, customer_id: str) -> set[str]:
        """Dealers that registered the customer, were granted it or assigned its lead."""

    async def name_entries(self, after_id: str, limit: int) -> list[NameEntry]:
        """Customers by id after ``after_id``, for loading the name index."""

    async def name_entries_since(self, moment: datetime) -> list[NameEntry]:
        """Customers changed at or after ``moment``."""


class RegistrationRepository(Protocol):
    async def get(self, registration_id: str, *,
                  for_update: bool = False) -> Registration | None: ...

    async def add(self, registration: Registration) -> None:
        """``SlotTaken`` when it holds a slot another holds; ``RequestRepeated`` when the
        dealer's client request id is taken."""

    async def save(self, registration: Registration) -> None:
        """``SlotTaken`` as ``add``."""

    async def by_request(self, dealer_id: str, request_id: str) -> Registration | None: ...

    async def holder(self, customer_id: str, product_line: str) -> Registration | None:
        """The registration holding the slot."""

    async def holders(self, customer_ids: Iterable[str],
                      product_line: str) -> list[Registration]:
        """The registrations holding the slots of these customers for the line."""

    async def in_conflict(self, conflict_id: str) -> list[Registration]:
        """Oldest submission first."""

    async def of_customer(self, customer_id: str) -> list[Registration]:
        """Every registration of the customer, oldest first."""

    async def page(self, which: RegistrationFilter,
                   page: PageRequest) -> Page[Registration]: ...

    async def due_to_expire(self, now: datetime, limit: int) -> list[str]:
        """Approved registrations whose protection ended before ``now``."""

    async def hand_over_approvals(self, from_user_id: str, to_user_id: str) -> int:
        """Pending registrations waiting for one manager wait for another."""

    async def stage_counts(self, which: FunnelFilter) -> list[StageCount]: ...


class ConflictRepository(Protocol):
    async def get(self, conflict_id: str, *, for_update: bool = False) -> Conflict | None: ...

    async def open_on(self, customer_id: str, product_line: str) -> Conflict | None: ...

    async def add(self, conflict: Conflict) -> None:
        """``AlreadyStored`` when the slot has an open conflict."""

    async def save(self, conflict: Conflict) -> None: ...

    async def page(self, which: ConflictFilter, page: PageRequest) -> Page[Conflict]: ...


class NoteRepository(Protocol):
    async def add(self, note: Note) -> None: ...

    async def page(self, registration_id: str, page: PageRequest) -> Page[Note]:
        """Newest first."""


class LeadRepository(Protocol):
    async def get(self, lead_id: str, *, for_update: bool = False) -> Lead | None: ...

    async def add(self, lead: Lead) -> None: ...

    async def save(self, lead: Lead) -> None: ...

    async def page(self, which: LeadFilter, page: PageRequest) -> Page[Lead]: ...

    async def move_customer(self, from_id: str, to_id: str) -> None:
        """Leads of one customer point at another (a merge)."""

    async def assigned_counts(self, dealer_ids: Iterable[str]) -> dict[str, int]:
        """Leads assigned and not yet claimed, per dealer."""

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        """Assigned leads whose claim deadline passed before ``now``."""


class AuthorizationRepository(Protocol):
    async def get(self, grant_id: str, *,
                  for_update: bool = False) -> Authorization | None: ...

    async def add(self, grant: Authorization) -> None: ...

    async def save(self, grant: Authorization) -> None: ...

    async def page(self, which: AuthorizationFilter,
                   page: PageRequest) -> Page[Authorization]: ...

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> None:
        """Grants of one customer point at another (a merge)."""

    async def owned_by(self, owner_user_id: str,
                       dealer_ids: frozenset[str] | None) -> list[Authorization]: ...

    async def activate_started(self, today: date) -> int:
        """Pending grants whose first day has come become active; how many."""

    async def lapsed(self, today: date, limit: int) -> list[str]:
        """Pending or active grants whose last day is before ``today``."""


class DealerRepository(Protocol):
    async def get(self, dealer_id: str) -> DealerView | None:
        """With its managers per product line."""

    async def upsert(self, dealer: DealerFacts, now: datetime) -> None: ...

    async def active(self) -> list[DealerView]: ...

    async def lead_assigned(self, dealer_id: str, moment: datetime) -> None: ...

    async def names(self, dealer_ids: Iterable[str]) -> dict[str, str]: ...

    async def assign(self, assignment: Assignment) -> None:
        """Record a manager assignment (nothing if it is there)."""

    async def unassign(self, assignment: Assignment) -> None: ...


class RegistrationUnitOfWork(Protocol):
    customers: CustomerRepository
    registrations: RegistrationRepository
    conflicts: ConflictRepository
    notes: NoteRepository
    leads: LeadRepository
    authorizations: AuthorizationRepository
    dealers: DealerRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


class Identity(Protocol):
    async def dealer(self, dealer_id: str) -> DealerFacts | None:
        """The dealer as identity knows it now (None: no such dealer)."""


class Names(Protocol):
    """The in-memory name index (shared.names.index.NameIndex)."""

    watermark: datetime | None

    def exact(self, city_code: str, normalized_name: str) -> list[Match]: ...

    def fuzzy(self, city_code: str, normalized_name: str, threshold_bps: int,
              limit: int = 10, division_code: str = "") -> list[Match]: ...

    def put(self, customer_id: str, city_code: str, normalized_name: str,
            aliases: list[str], address_key: str = "", division_code: str = "") -> None: ...

    def remove(self, customer_id: str) -> None: ...

    def at_address(self, city_code: str, address_key: str,
                   normalized_name: str) -> list[Match]: ...

    def other_cities(self, city_code: str, normalized_name: str, *,
                     campus: bool) -> list[Match]: ...


class Places(Protocol):
    """Addresses placed in GB/T 2260 (adapters/places.py)."""

    def place(self, address: str) -> Placement: ...

    def is_known(self, code: str) -> bool: ...


class Letters(Protocol):
    """Authorization letters rendered (adapters/letters.py)."""

    def to_pdf(self, letter: Letter) -> bytes: ...

    def to_xlsx(self, letter: Letter) -> bytes: ...


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api, consumers and workers to pass
    on."""

    uow: Callable[[], RegistrationUnitOfWork]
    # A unit of work inside a consumer's transaction (the one holding its inbox row).
    uow_in: Callable[[object], RegistrationUnitOfWork]
    clock: Clock
    ids: IdSource
    scopes: Scopes
    identity: Identity
    names: Names
    places: Places
    letters: Letters
    policy: Policy
