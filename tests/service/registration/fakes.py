"""In-memory registration repositories, unit of work and ports for the service-layer
tests. The stores refuse what the database refuses: a second holder of a customer ×
product line slot (``SlotTaken``), a repeated client request id (``RequestRepeated``),
a second customer with the same city and normalized name or credit code and a second
open conflict on a slot (``AlreadyStored``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from services.registration.adapters import places
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
)
from services.registration.domain.dealers import Assignment, DealerFacts
from services.registration.domain.leads import Lead, LeadFilter
from services.registration.domain.registrations import (
    AlreadyStored,
    Conflict,
    ConflictFilter,
    FunnelDimension,
    FunnelFilter,
    Note,
    Registration,
    RegistrationFilter,
    RequestRepeated,
    SlotTaken,
    StageCount,
)
from services.registration.domain.rules import (
    PENDING,
    AuthStatus,
    DealerView,
    LeadStatus,
    Policy,
    Status,
)
from services.registration.usecases.ports import Deps
from shared import divisions
from shared.errors import check_version
from shared.names.index import NameIndex
from shared.pagination import Page, PageRequest, page_of_all
from shared.testing import FakeClock, FakeScopes, FakeUnitOfWork, SequentialIds

NEVER = datetime.min.replace(tzinfo=UTC)


def paged(items: Iterable, page: PageRequest, key: Callable) -> Page:
    return page_of_all(sorted(items, key=key), page)


def _newest_first(moment: datetime | None) -> float:
    return -(moment or NEVER).timestamp()


@dataclass
class FakeCustomers:
    rows: dict[str, Customer] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    # customer id → dealers tied to it (the unit of work looks at its other stores)
    ties: Callable[[str], set[str]] = lambda customer_id: set()

    async def get(self, customer_id: str) -> Customer | None:
        return self.rows.get(customer_id)

    async def get_many(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        return {i: self.rows[i] for i in customer_ids if i in self.rows}

    def _check_unique(self, customer: Customer) -> None:
        for other in self.rows.values():
            if other.id != customer.id and (
                    (other.city_code, other.normalized_name)
                    == (customer.city_code, customer.normalized_name)
                    or (customer.credit_code and other.credit_code == customer.credit_code)):
                raise AlreadyStored(f"customer {customer.name}")

    def _put_aliases(self, customer: Customer, source: str) -> None:
        for key in customer.alias_keys:
            if self.aliases.setdefault((customer.city_code, key), customer.id) == customer.id:
                self.sources.setdefault((customer.id, key), source)

    async def add(self, customer: Customer) -> None:
        self._check_unique(customer)
        self.rows[customer.id] = customer
        self._put_aliases(customer, "customer")

    async def save(self, customer: Customer, alias_source: str = "customer") -> int:
        self._check_unique(customer)
        if (stored := self.rows.get(customer.id)) is not None:
            check_version(f"customer {customer.id}", customer.version, stored.version)
        customer = replace(customer, version=customer.version + 1)
        self.rows[customer.id] = customer
        self.aliases = {k: v for k, v in self.aliases.items() if v != customer.id}
        self.sources = {k: v for k, v in self.sources.items()
                        if k[0] != customer.id or k[1] in customer.alias_keys}
        self._put_aliases(customer, alias_source)
        return customer.version

    async def remove(self, customer_id: str) -> None:
        self.rows.pop(customer_id, None)
        self.aliases = {k: v for k, v in self.aliases.items() if v != customer_id}

    async def alias_sources(self, customer_id: str) -> dict[str, str]:
        return {key: source for (owner, key), source in self.sources.items()
                if owner == customer_id}

    async def tied_dealers(self, customer_id: str) -> set[str]:
        return self.ties(customer_id)

    async def ids_with_credit_code(self, credit_code: str) -> list[str]:
        return [c.id for c in self.rows.values() if c.credit_code == credit_code]

    async def ids_named(self, city_code: str, normalized_name: str) -> list[str]:
        return [c.id for c in self.rows.values()
                if (c.city_code, c.normalized_name) == (city_code, normalized_name)]

    async def ids_named_anywhere(self, normalized_name: str, city_code: str = "") -> list[str]:
        return [c.id for c in self.rows.values() if c.normalized_name == normalized_name
                and (not city_code or c.city_code == city_code)]

    async def ids_with_alias(self, city_code: str, normalized_alias: str) -> list[str]:
        found = self.aliases.get((city_code, normalized_alias))
        return [found] if found else []

    async def page(self, query: CustomerQuery, page: PageRequest,
                   visible: CustomerVisibility | None = None) -> Page[Customer]:
        text, normalized, credit_code = query.terms()

        def matches(c: Customer) -> bool:
            return ((visible is None or visible.allows(self.ties(c.id)))
                    and (not text or text in c.name or normalized in c.normalized_name
                         or c.credit_code == credit_code)
                    and c.division_code.startswith(query.division_prefix)
                    and (not query.customer_type or c.customer_type == query.customer_type))

        return paged(filter(matches, self.rows.values()), page, lambda c: (c.name, c.id))

    def _entry(self, c: Customer) -> NameEntry:
        return NameEntry(c.id, c.city_code, c.normalized_name, list(c.aliases), c.address_key,
                         c.division_code)

    async def name_entries(self, after_id: str, limit: int) -> list[NameEntry]:
        return [self._entry(c) for c in sorted(self.rows.values(), key=lambda c: c.id)
                if c.id > after_id][:limit]

    async def name_entries_since(self, moment: datetime) -> list[NameEntry]:
        return [self._entry(c) for c in self.rows.values() if c.updated_at >= moment]


@dataclass
class FakeRegistrations:
    rows: dict[str, Registration] = field(default_factory=dict)

    def _check_unique(self, registration: Registration) -> None:
        for other in self.rows.values():
            if other.id == registration.id:
                continue
            if registration.holds_slot and other.holds_slot and other.slot == registration.slot:
                raise SlotTaken()
            if (registration.client_request_id and other.dealer_id == registration.dealer_id
                    and other.client_request_id == registration.client_request_id):
                raise RequestRepeated()

    async def get(self, registration_id: str, *,
                  for_update: bool = False) -> Registration | None:
        return self.rows.get(registration_id)

    async def add(self, registration: Registration) -> None:
        self._check_unique(registration)
        self.rows[registration.id] = registration

    async def save(self, registration: Registration) -> None:
        self._check_unique(registration)
        self.rows[registration.id] = registration

    async def by_request(self, dealer_id: str, request_id: str) -> Registration | None:
        return next((r for r in self.rows.values() if r.dealer_id == dealer_id
                     and r.client_request_id == request_id), None)

    async def holder(self, customer_id: str, product_line: str) -> Registration | None:
        return next((r for r in self.rows.values() if r.holds_slot
                     and (r.customer_id, r.product_line) == (customer_id, product_line)), None)

    def _oldest_first(self, keep) -> list[Registration]:
        return sorted(filter(keep, self.rows.values()), key=lambda r: (r.submitted_at, r.id))

    async def holders(self, customer_ids: Iterable[str],
                      product_line: str) -> list[Registration]:
        ids = set(customer_ids)
        return self._oldest_first(lambda r: r.holds_slot and r.customer_id in ids
                                  and r.product_line == product_line)

    async def of_customer(self, customer_id: str) -> list[Registration]:
        return sorted((r for r in self.rows.values() if r.customer_id == customer_id),
                      key=lambda r: (r.submitted_at, r.id))

    async def in_conflict(self, conflict_id: str) -> list[Registration]:
        return self._oldest_first(lambda r: r.conflict_id == conflict_id)

    async def page(self, which: RegistrationFilter,
                   page: PageRequest) -> Page[Registration]:
        q = which.query

        def keep(r: Registration) -> bool:
            wanted = ((q.dealer_id, r.dealer_id), (q.customer_id, r.customer_id),
                      (q.product_line, r.product_line), (q.region_code, r.region_code),
                      (q.approver_user_id, r.approver_user_id), (q.stage, r.stage))
            return (all(not value or value == actual for value, actual in wanted)
                    and (which.dealer_ids is None or r.dealer_id in which.dealer_ids)
                    and (not q.statuses or r.status in q.statuses)
                    and (which.protected_by is None
                         or (r.status == Status.APPROVED
                             and r.protected_until <= which.protected_by)))

        if which.protected_by is not None:
            return paged(filter(keep, self.rows.values()), page,
                         lambda r: (r.protected_until, r.id))
        return paged(filter(keep, self.rows.values()), page,
                     lambda r: (_newest_first(r.submitted_at), r.id))

    async def due_to_expire(self, now: datetime, limit: int) -> list[str]:
        return [r.id for r in self.rows.values() if r.status == Status.APPROVED
                and r.protected_until < now][:limit]

    async def hand_over_approvals(self, from_user_id: str, to_user_id: str) -> int:
        moved = [r for r in self.rows.values()
                 if r.approver_user_id == from_user_id and r.status in PENDING]
        for r in moved:
            self.rows[r.id] = replace(r, approver_user_id=to_user_id)
        return len(moved)

    async def stage_counts(self, which: FunnelFilter) -> list[StageCount]:
        start = which.approved_from and datetime.combine(which.approved_from,
                                                         datetime.min.time(), UTC)
        end = which.approved_to and datetime.combine(
            which.approved_to + timedelta(days=1), datetime.min.time(), UTC)
        counts: dict[tuple[str, str], int] = {}
        for r in self.rows.values():
            if (r.status != Status.APPROVED
                    or (which.dealer_ids is not None and r.dealer_id not in which.dealer_ids)
                    or any(value and value != actual for value, actual in (
                        (which.dealer_id, r.dealer_id), (which.region_code, r.region_code),
                        (which.product_line, r.product_line)))
                    or (start and r.approved_at < start) or (end and r.approved_at >= end)):
                continue
            key = {FunnelDimension.REGION: r.region_code, FunnelDimension.DEALER: r.dealer_id,
                   FunnelDimension.PRODUCT_LINE: r.product_line}.get(which.group_by, "")
            counts[(key, r.stage)] = counts.get((key, r.stage), 0) + 1
        return [StageCount(key, stage, n) for (key, stage), n in counts.items()]


@dataclass
class FakeConflicts:
    # The registrations of the same unit of work (for the dealers a conflict involves).
    registrations: Callable[[], FakeRegistrations]
    rows: dict[str, Conflict] = field(default_factory=dict)

    async def get(self, conflict_id: str, *, for_update: bool = False) -> Conflict | None:
        return self.rows.get(conflict_id)

    async def open_on(self, customer_id: str, product_line: str) -> Conflict | None:
        key = f"{customer_id}|{product_line}"
        return next((c for c in self.rows.values() if c.open_key == key), None)

    async def add(self, conflict: Conflict) -> None:
        if any(c.open_key == conflict.open_key for c in self.rows.values()):
            raise AlreadyStored(f"open conflict on {conflict.open_key}")
        self.rows[conflict.id] = conflict

    async def save(self, conflict: Conflict) -> None:
        self.rows[conflict.id] = conflict

    async def page(self, which: ConflictFilter, page: PageRequest) -> Page[Conflict]:
        q = which.query
        registrations = self.registrations().rows.values()

        def involves(c: Conflict) -> bool:
            if not (q.dealer_id or q.region_code or which.dealer_ids is not None):
                return True
            return any(r.conflict_id == c.id
                       and (not q.dealer_id or r.dealer_id == q.dealer_id)
                       and (not q.region_code or r.region_code == q.region_code)
                       and (which.dealer_ids is None or r.dealer_id in which.dealer_ids)
                       for r in registrations)

        return paged((c for c in self.rows.values()
                      if (q.status is None or c.status == q.status)
                      and (not q.product_line or c.product_line == q.product_line)
                      and involves(c)), page,
                     lambda c: (_newest_first(c.raised_at), c.id))


@dataclass
class FakeNotes:
    rows: dict[str, Note] = field(default_factory=dict)

    async def add(self, note: Note) -> None:
        self.rows[note.id] = note

    async def page(self, registration_id: str, page: PageRequest) -> Page[Note]:
        return paged((n for n in self.rows.values() if n.registration_id == registration_id),
                     page, lambda n: (_newest_first(n.created_at), n.id))


@dataclass
class FakeLeads:
    rows: dict[str, Lead] = field(default_factory=dict)

    async def get(self, lead_id: str, *, for_update: bool = False) -> Lead | None:
        return self.rows.get(lead_id)

    async def add(self, lead: Lead) -> None:
        self.rows[lead.id] = lead

    async def move_customer(self, from_id: str, to_id: str) -> None:
        for lead in list(self.rows.values()):
            if lead.customer_id == from_id:
                self.rows[lead.id] = replace(lead, customer_id=to_id)

    async def save(self, lead: Lead) -> None:
        self.rows[lead.id] = lead

    async def page(self, which: LeadFilter, page: PageRequest) -> Page[Lead]:
        q = which.query
        prefix = divisions.prefix(q.division_code) if q.division_code else ""

        def keep(lead: Lead) -> bool:
            visible = (which.dealer_ids is None or lead.assigned_dealer_id in which.dealer_ids
                       or (which.with_pool and not lead.assigned_dealer_id))
            return (visible and (not q.statuses or lead.status in q.statuses)
                    and (not q.assigned_dealer_id
                         or lead.assigned_dealer_id == q.assigned_dealer_id)
                    and lead.division_code.startswith(prefix)
                    and (not q.product_line or lead.product_line == q.product_line))

        return paged(filter(keep, self.rows.values()), page,
                     lambda lead: (_newest_first(lead.created_at), lead.id))

    async def assigned_counts(self, dealer_ids: Iterable[str]) -> dict[str, int]:
        wanted = set(dealer_ids)
        counts: dict[str, int] = {}
        for lead in self.rows.values():
            if lead.status == LeadStatus.ASSIGNED and lead.assigned_dealer_id in wanted:
                counts[lead.assigned_dealer_id] = counts.get(lead.assigned_dealer_id, 0) + 1
        return counts

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        return [lead.id for lead in self.rows.values() if lead.status == LeadStatus.ASSIGNED
                and lead.claim_deadline < now][:limit]


LIVE = (AuthStatus.ACTIVE, AuthStatus.PENDING)


@dataclass
class FakeAuthorizations:
    rows: dict[str, Authorization] = field(default_factory=dict)

    async def get(self, grant_id: str, *, for_update: bool = False) -> Authorization | None:
        return self.rows.get(grant_id)

    async def add(self, grant: Authorization) -> None:
        if any(g.letter_no == grant.letter_no for g in self.rows.values()):
            raise AlreadyStored(f"letter {grant.letter_no}")
        self.rows[grant.id] = grant

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> None:
        for grant in list(self.rows.values()):
            if grant.customer_id == from_id:
                self.rows[grant.id] = replace(grant, customer_id=to_id, customer_name=to_name)

    async def save(self, grant: Authorization) -> None:
        self.rows[grant.id] = grant

    async def page(self, which: AuthorizationFilter,
                   page: PageRequest) -> Page[Authorization]:
        q = which.query

        def keep(g: Authorization) -> bool:
            wanted = ((q.dealer_id, g.dealer_id), (q.customer_id, g.customer_id),
                      (q.product_line, g.product_line), (q.owner_user_id, g.owner_user_id))
            return (all(not value or value == actual for value, actual in wanted)
                    and (which.dealer_ids is None or g.dealer_id in which.dealer_ids)
                    and (not q.statuses or g.status in q.statuses)
                    and (not q.valid_on or g.valid_from <= q.valid_on <= g.valid_to))

        return paged(filter(keep, self.rows.values()), page,
                     lambda g: (_newest_first(g.granted_at), g.id))

    async def owned_by(self, owner_user_id: str,
                       dealer_ids: frozenset[str] | None) -> list[Authorization]:
        return [g for g in self.rows.values() if g.owner_user_id == owner_user_id
                and (not dealer_ids or g.dealer_id in dealer_ids)]

    async def activate_started(self, today: date) -> int:
        started = [g for g in self.rows.values() if g.status == AuthStatus.PENDING
                   and g.valid_from <= today.isoformat()]
        for g in started:
            self.rows[g.id] = replace(g, status=AuthStatus.ACTIVE)
        return len(started)

    async def lapsed(self, today: date, limit: int) -> list[str]:
        return [g.id for g in self.rows.values()
                if g.status in LIVE and g.valid_to < today.isoformat()][:limit]


@dataclass
class FakeDealers:
    rows: dict[str, DealerView] = field(default_factory=dict)
    assignments: set[Assignment] = field(default_factory=set)

    async def get(self, dealer_id: str) -> DealerView | None:
        dealer = self.rows.get(dealer_id)
        if dealer is None:
            return None
        managers: dict[str, str] = {}
        for a in sorted(self.assignments, key=lambda a: a.manager_user_id):
            if a.dealer_id == dealer_id:
                managers.setdefault(a.product_line, a.manager_user_id)
        return replace(dealer, managers=managers)

    async def upsert(self, dealer: DealerFacts, now: datetime) -> None:
        previous = self.rows.get(dealer.id)
        self.rows[dealer.id] = DealerView(
            dealer.id, dealer.name, dealer.tier, dealer.division_codes, dealer.product_lines,
            dealer.region_code, dealer.active,
            last_lead_assigned_at=previous.last_lead_assigned_at if previous else None)

    async def active(self) -> list[DealerView]:
        return [d for d in self.rows.values() if d.active]

    async def lead_assigned(self, dealer_id: str, moment: datetime) -> None:
        if dealer_id in self.rows:
            self.rows[dealer_id] = replace(self.rows[dealer_id], last_lead_assigned_at=moment)

    async def names(self, dealer_ids: Iterable[str]) -> dict[str, str]:
        return {i: self.rows[i].name for i in dealer_ids if i in self.rows}

    async def assign(self, assignment: Assignment) -> None:
        self.assignments.add(assignment)

    async def unassign(self, assignment: Assignment) -> None:
        self.assignments.discard(assignment)


class FakeRegistrationUnitOfWork(FakeUnitOfWork):
    repositories = ("customers", "registrations", "conflicts", "notes", "leads",
                    "authorizations", "dealers")

    def __init__(self) -> None:
        super().__init__()
        self.customers = FakeCustomers()
        self.registrations = FakeRegistrations()
        self.conflicts = FakeConflicts(lambda: self.registrations)
        self.notes = FakeNotes()
        self.leads = FakeLeads()
        self.authorizations = FakeAuthorizations()
        self.dealers = FakeDealers()
        self.customers.ties = _Ties(self)
        self.entered = 0

    def _open(self, write: bool):
        self.entered += 1
        return super()._open(write)


class _Ties:
    """The dealers tied to a customer, read from the unit of work's current stores (not
    copied with the customers' store when a unit of work is entered)."""

    def __init__(self, uow: FakeRegistrationUnitOfWork) -> None:
        self.uow = uow

    def __deepcopy__(self, memo) -> _Ties:
        return self

    def __call__(self, customer_id: str) -> set[str]:
        uow = self.uow
        return ({r.dealer_id for r in uow.registrations.rows.values()
                 if r.customer_id == customer_id}
                | {a.dealer_id for a in uow.authorizations.rows.values()
                   if a.customer_id == customer_id}
                | {lead.assigned_dealer_id for lead in uow.leads.rows.values()
                   if lead.customer_id == customer_id and lead.assigned_dealer_id})

@dataclass
class FakeIdentity:
    """Identity's dealers, for a dealer not projected yet."""

    dealers: dict[str, DealerFacts] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def dealer(self, dealer_id: str) -> DealerFacts | None:
        self.asked.append(dealer_id)
        return self.dealers.get(dealer_id)


class FakeLetters:
    def to_pdf(self, letter: Letter) -> bytes:
        return b"%PDF " + letter.letter_no.encode()

    def to_xlsx(self, letter: Letter) -> bytes:
        return b"PK " + letter.letter_no.encode()


def fake_deps(**policy) -> tuple[Deps, FakeRegistrationUnitOfWork]:
    """Collaborators on one in-memory unit of work; ``policy`` overrides Policy fields.
    Addresses are placed by the real (pure, in-process) GB/T 2260 placer."""
    uow = FakeRegistrationUnitOfWork()
    deps = Deps(uow=lambda: uow, uow_in=lambda _transaction: uow, clock=FakeClock(),
                ids=SequentialIds("id"), scopes=FakeScopes(), identity=FakeIdentity(),
                names=NameIndex(), places=places, letters=FakeLetters(),
                policy=Policy(**policy))
    return deps, uow
