"""The registration repositories over SQL: domain objects in, domain objects out.

What the database guarantees is translated here: a UNIQUE violation on
``registrations.active_key`` is ``SlotTaken`` (the first-come slot), on the dealer's
client request id ``RequestRepeated``, on a customer's city and name or credit code and on
a conflict's open key ``AlreadyStored``. ``get(..., for_update=True)`` is ``SELECT … FOR
UPDATE`` (PostgreSQL locks the row; SQLite, whose write transactions hold the database
lock from their start, leaves the clause out). Upserts (the dealer projection, aliases,
assignments) are ``INSERT … ON CONFLICT``, spelled by the dialect in use.

Statements are SQLAlchemy Core: rows are read into domain objects and written back by
id, so nothing depends on an ORM identity map."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, delete, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registration import messages
from services.registration.adapters.orm import (
    AuthorizationRow,
    ConflictRow,
    CustomerAliasRow,
    CustomerRow,
    DealerRow,
    LeadRow,
    ManagerAssignmentRow,
    NoteRow,
    RegistrationRow,
)
from services.registration.domain.authorizations import Authorization, AuthorizationFilter
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
    ConflictStatus,
    FunnelDimension,
    FunnelFilter,
    Note,
    Registration,
    RegistrationFilter,
    RequestRepeated,
    SlotTaken,
    Source,
    StageCount,
)
from services.registration.domain.rules import (
    PENDING,
    AuthStatus,
    DealerView,
    LeadStatus,
    Status,
    active_key,
)
from shared import divisions
from shared.clock import aware
from shared.db import dialect_insert, fetch_page
from shared.pagination import Page, PageRequest
from shared.versioning import update_versioned

customers_table = CustomerRow.__table__
aliases_table = CustomerAliasRow.__table__
registrations_table = RegistrationRow.__table__
conflicts_table = ConflictRow.__table__
leads_table = LeadRow.__table__
notes_table = NoteRow.__table__
authorizations_table = AuthorizationRow.__table__
dealers_table = DealerRow.__table__
assignments_table = ManagerAssignmentRow.__table__


def _violation(error: IntegrityError) -> str:
    """The database's words for a constraint violation, lower case."""
    return str(error.orig if error.orig is not None else error).lower()


async def _get(session: AsyncSession, table, key: str, for_update: bool = False):
    query = select(table).where(table.c.id == key)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def _rows(session: AsyncSession, query) -> list:
    return list((await session.execute(query)).all())


async def _page(session: AsyncSession, query, page: PageRequest, convert, *,
                keyset: bool = True) -> Page:
    """A counted page; a cursor after the last item (``fetch_page``'s keyset) unless the
    list is ordered by something other than time (a name makes too long a token)."""
    return (await fetch_page(session, query, page, count=True, scalars=False,
                             keyset=keyset)).map(convert)


def _at(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment is not None else None


# customers

def _customer(row) -> Customer:
    return Customer(
        id=row.id, name=row.name, normalized_name=row.normalized_name,
        aliases=tuple(row.aliases or ()), credit_code=row.credit_code, address=row.address,
        division_code=row.division_code, division_overridden=row.division_overridden,
        city_code=row.city_code, customer_type=row.customer_type, grade=row.grade,
        departments=tuple(row.departments or ()), address_key=row.address_key or "",
        created_at=aware(row.created_at), updated_at=aware(row.updated_at),
        created_by=row.created_by, version=row.version)


def _customer_values(customer: Customer) -> dict:
    return dict(
        id=customer.id, name=customer.name, normalized_name=customer.normalized_name,
        aliases=list(customer.aliases), credit_code=customer.credit_code,
        address=customer.address, division_code=customer.division_code,
        division_overridden=customer.division_overridden, city_code=customer.city_code,
        customer_type=customer.customer_type, grade=customer.grade,
        departments=list(customer.departments), address_key=customer.address_key,
        created_at=customer.created_at, updated_at=customer.updated_at,
        created_by=customer.created_by)


NAME_COLUMNS = (customers_table.c.id, customers_table.c.city_code,
                customers_table.c.normalized_name, customers_table.c.aliases,
                customers_table.c.address_key, customers_table.c.division_code)


class SqlCustomers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, customer_id: str) -> Customer | None:
        row = await _get(self.session, customers_table, customer_id)
        return _customer(row) if row else None

    async def get_many(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        rows = await _rows(self.session, select(customers_table).where(
            customers_table.c.id.in_(list(customer_ids))))
        return {row.id: _customer(row) for row in rows}

    async def add(self, customer: Customer) -> None:
        try:
            await self.session.execute(insert(customers_table).values(
                **_customer_values(customer)))
        except IntegrityError as exc:
            raise AlreadyStored(f"customer {customer.name}") from exc
        await self._put_aliases(customer, {}, "customer")

    async def save(self, customer: Customer, alias_source: str = "customer") -> int:
        """Store the customer if it is still at ``customer.version`` (StaleVersion
        otherwise); aliases it had keep their source, new ones get ``alias_source``. The
        customer's new version."""
        try:
            version = await update_versioned(self.session, customers_table, customer.id,
                                             customer.version, _customer_values(customer),
                                             f"customer {customer.id}")
        except IntegrityError as exc:
            raise AlreadyStored(f"customer {customer.name}") from exc
        sources = dict((await self.session.execute(
            select(aliases_table.c.normalized_alias, aliases_table.c.source).where(
                aliases_table.c.customer_id == customer.id))).all())
        await self.session.execute(delete(aliases_table).where(
            aliases_table.c.customer_id == customer.id))
        await self._put_aliases(customer, sources, alias_source)
        return version

    async def remove(self, customer_id: str) -> None:
        await self.session.execute(delete(aliases_table).where(
            aliases_table.c.customer_id == customer_id))
        await self.session.execute(delete(customers_table).where(
            customers_table.c.id == customer_id))

    async def _put_aliases(self, customer: Customer, sources: dict[str, str],
                           source: str) -> None:
        """Each alias once per city: one another customer of the city has is skipped."""
        for key in customer.alias_keys:
            await self.session.execute(
                dialect_insert(self.session, aliases_table)
                .values(city_code=customer.city_code, normalized_alias=key,
                        customer_id=customer.id, source=sources.get(key, source))
                .on_conflict_do_nothing())

    async def alias_sources(self, customer_id: str) -> dict[str, str]:
        """Normalized alias → where it came from."""
        return dict((await self.session.execute(
            select(aliases_table.c.normalized_alias, aliases_table.c.source).where(
                aliases_table.c.customer_id == customer_id))).all())

    async def ids_with_credit_code(self, credit_code: str) -> list[str]:
        return list((await self.session.scalars(select(customers_table.c.id).where(
            customers_table.c.credit_code == credit_code))).all())

    async def ids_named(self, city_code: str, normalized_name: str) -> list[str]:
        return list((await self.session.scalars(select(customers_table.c.id).where(
            customers_table.c.city_code == city_code,
            customers_table.c.normalized_name == normalized_name))).all())

    async def ids_named_anywhere(self, normalized_name: str, city_code: str = "") -> list[str]:
        statement = select(customers_table.c.id).where(
            customers_table.c.normalized_name == normalized_name)
        if city_code:
            statement = statement.where(customers_table.c.city_code == city_code)
        return list((await self.session.scalars(statement)).all())

    async def ids_with_alias(self, city_code: str, normalized_alias: str) -> list[str]:
        return list((await self.session.scalars(select(aliases_table.c.customer_id).where(
            aliases_table.c.city_code == city_code,
            aliases_table.c.normalized_alias == normalized_alias))).all())

    async def tied_dealers(self, customer_id: str) -> set[str]:
        r, a, lead = registrations_table.c, authorizations_table.c, leads_table.c
        rows = await _rows(self.session, select(r.dealer_id).where(r.customer_id == customer_id)
                           .union(select(a.dealer_id).where(a.customer_id == customer_id),
                                  select(lead.assigned_dealer_id).where(
                                      lead.customer_id == customer_id,
                                      lead.assigned_dealer_id != "")))
        return {row[0] for row in rows}

    async def page(self, query: CustomerQuery, page: PageRequest,
                   visible: CustomerVisibility | None = None) -> Page[Customer]:
        c = customers_table.c
        statement = select(customers_table).order_by(c.name, c.id)
        if visible is not None and not visible.everything:
            statement = statement.where(_visible(visible))
        if query.text:
            text, normalized, credit_code = query.terms()
            statement = statement.where(or_(c.name.contains(text),
                                            c.normalized_name.contains(normalized),
                                            c.credit_code == credit_code))
        if query.division_prefix:
            statement = statement.where(c.division_code.startswith(query.division_prefix))
        if query.customer_type:
            statement = statement.where(c.customer_type == query.customer_type)
        return await _page(self.session, statement, page, _customer, keyset=False)

    async def name_entries(self, after_id: str, limit: int) -> list[NameEntry]:
        rows = await _rows(self.session, select(*NAME_COLUMNS).where(
            customers_table.c.id > after_id).order_by(customers_table.c.id).limit(limit))
        return [NameEntry._make(row) for row in rows]

    async def name_entries_since(self, moment: datetime) -> list[NameEntry]:
        rows = await _rows(self.session, select(*NAME_COLUMNS).where(
            customers_table.c.updated_at >= moment))
        return [NameEntry._make(row) for row in rows]


def _visible(visible: CustomerVisibility):
    """Customers tied to the visible dealers (registered, granted, assigned), and — for
    those who edit the master — customers tied to no dealer."""
    c = customers_table.c
    r, a, lead = registrations_table.c, authorizations_table.c, leads_table.c
    dealers = list(visible.dealer_ids or ())
    tied = or_(c.id.in_(select(r.customer_id).where(r.dealer_id.in_(dealers))),
               c.id.in_(select(a.customer_id).where(a.dealer_id.in_(dealers))),
               c.id.in_(select(lead.customer_id).where(lead.assigned_dealer_id.in_(dealers))))
    if not visible.untied:
        return tied
    untied = and_(~c.id.in_(select(r.customer_id)), ~c.id.in_(select(a.customer_id)),
                  ~c.id.in_(select(lead.customer_id).where(lead.assigned_dealer_id != "")))
    return or_(tied, untied)


# registrations

def _registration(row) -> Registration:
    return Registration(
        id=row.id, customer_id=row.customer_id, customer_name=row.customer_name,
        dealer_id=row.dealer_id, product_line=row.product_line, status=Status(row.status),
        holds_slot=row.active_key is not None, submitted_at=aware(row.submitted_at),
        submitted_by=row.submitted_by, region_code=row.region_code, source=Source(row.source),
        lead_id=row.lead_id, client_request_id=row.client_request_id or "",
        approver_user_id=row.approver_user_id, decided_at=_at(row.decided_at),
        decided_by=row.decided_by, decision_note=row.decision_note,
        approved_at=_at(row.approved_at), protected_until=_at(row.protected_until),
        renewal_count=row.renewal_count, stage=row.stage, next_step=row.next_step,
        conflict_id=row.conflict_id, department=row.department,
        evidence=messages.decode_evidence(row.evidence), updated_at=_at(row.updated_at))


def _registration_values(r: Registration) -> dict:
    return dict(
        id=r.id, customer_id=r.customer_id, customer_name=r.customer_name,
        dealer_id=r.dealer_id, region_code=r.region_code, product_line=r.product_line,
        status=r.status.value, active_key=r.slot if r.holds_slot else None,
        source=int(r.source), lead_id=r.lead_id,
        client_request_id=r.client_request_id or None, submitted_at=r.submitted_at,
        submitted_by=r.submitted_by, approver_user_id=r.approver_user_id,
        decided_at=r.decided_at, decided_by=r.decided_by, decision_note=r.decision_note,
        approved_at=r.approved_at, protected_until=r.protected_until,
        renewal_count=r.renewal_count, stage=r.stage, next_step=r.next_step,
        conflict_id=r.conflict_id, department=r.department,
        evidence=messages.encode_evidence(r.evidence), updated_at=r.updated_at)


def _slot_violation(error: IntegrityError) -> Exception | None:
    text = _violation(error)
    if "active_key" in text:
        return SlotTaken()
    if "client_request_id" in text or "dealer_request" in text:
        return RequestRepeated()
    return None


class SqlRegistrations:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, registration_id: str, *,
                  for_update: bool = False) -> Registration | None:
        row = await _get(self.session, registrations_table, registration_id, for_update)
        return _registration(row) if row else None

    async def add(self, registration: Registration) -> None:
        try:
            await self.session.execute(insert(registrations_table).values(
                **_registration_values(registration)))
        except IntegrityError as exc:
            raise (_slot_violation(exc) or exc) from exc

    async def save(self, registration: Registration) -> None:
        try:
            await self.session.execute(update(registrations_table).where(
                registrations_table.c.id == registration.id).values(
                **_registration_values(registration)))
        except IntegrityError as exc:
            raise (_slot_violation(exc) or exc) from exc

    async def _where(self, *conditions, order=()) -> list[Registration]:
        rows = await _rows(self.session, select(registrations_table).where(*conditions)
                           .order_by(*order))
        return [_registration(row) for row in rows]

    async def by_request(self, dealer_id: str, request_id: str) -> Registration | None:
        c = registrations_table.c
        found = await self._where(c.dealer_id == dealer_id, c.client_request_id == request_id)
        return found[0] if found else None

    async def holder(self, customer_id: str, product_line: str) -> Registration | None:
        found = await self._where(
            registrations_table.c.active_key == active_key(customer_id, product_line))
        return found[0] if found else None

    async def holders(self, customer_ids: Iterable[str],
                      product_line: str) -> list[Registration]:
        c = registrations_table.c
        return await self._where(c.customer_id.in_(list(customer_ids)),
                                 c.product_line == product_line, c.active_key.is_not(None),
                                 order=(c.submitted_at, c.id))

    async def of_customer(self, customer_id: str) -> list[Registration]:
        c = registrations_table.c
        return await self._where(c.customer_id == customer_id, order=(c.submitted_at, c.id))

    async def in_conflict(self, conflict_id: str) -> list[Registration]:
        c = registrations_table.c
        return await self._where(c.conflict_id == conflict_id, order=(c.submitted_at, c.id))

    async def page(self, which: RegistrationFilter,
                   page: PageRequest) -> Page[Registration]:
        c, q = registrations_table.c, which.query
        statement = select(registrations_table)
        for column, value in ((c.dealer_id, q.dealer_id), (c.customer_id, q.customer_id),
                              (c.product_line, q.product_line), (c.region_code, q.region_code),
                              (c.approver_user_id, q.approver_user_id), (c.stage, q.stage)):
            if value:
                statement = statement.where(column == value)
        if which.dealer_ids is not None:
            statement = statement.where(c.dealer_id.in_(which.dealer_ids))
        if q.statuses:
            statement = statement.where(c.status.in_([s.value for s in q.statuses]))
        if which.protected_by is not None:
            statement = (statement.where(c.status == Status.APPROVED.value,
                                         c.protected_until <= which.protected_by)
                         .order_by(c.protected_until, c.id))
        else:
            statement = statement.order_by(c.submitted_at.desc(), c.id)
        return await _page(self.session, statement, page, _registration)

    async def due_to_expire(self, now: datetime, limit: int) -> list[str]:
        c = registrations_table.c
        return list((await self.session.scalars(select(c.id).where(
            c.status == Status.APPROVED.value, c.protected_until < now).limit(limit))).all())

    async def hand_over_approvals(self, from_user_id: str, to_user_id: str) -> int:
        c = registrations_table.c
        result = await self.session.execute(
            update(registrations_table)
            .where(c.approver_user_id == from_user_id,
                   c.status.in_([s.value for s in PENDING]))
            .values(approver_user_id=to_user_id))
        return result.rowcount

    async def stage_counts(self, which: FunnelFilter) -> list[StageCount]:
        c = registrations_table.c
        key = {FunnelDimension.REGION: c.region_code, FunnelDimension.DEALER: c.dealer_id,
               FunnelDimension.PRODUCT_LINE: c.product_line}.get(which.group_by)
        groups = (c.stage,) if key is None else (key, c.stage)
        if key is None:  # one group: the whole scope
            key = literal_column("''")
        statement = (select(key.label("key"), c.stage, func.count())
                     .where(c.status == Status.APPROVED.value).group_by(*groups))
        if which.dealer_ids is not None:
            statement = statement.where(c.dealer_id.in_(which.dealer_ids))
        for column, value in ((c.dealer_id, which.dealer_id),
                              (c.region_code, which.region_code),
                              (c.product_line, which.product_line)):
            if value:
                statement = statement.where(column == value)
        if which.approved_from:
            statement = statement.where(c.approved_at >= _midnight(which.approved_from))
        if which.approved_to:
            statement = statement.where(
                c.approved_at < _midnight(which.approved_to + timedelta(days=1)))
        return [StageCount(key or "", stage, count)
                for key, stage, count in await _rows(self.session, statement)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


# conflicts and notes

def _conflict(row) -> Conflict:
    return Conflict(
        id=row.id, customer_id=row.customer_id, product_line=row.product_line,
        status=ConflictStatus(row.status), raised_at=aware(row.raised_at),
        resolved_at=_at(row.resolved_at), resolved_by=row.resolved_by,
        winning_registration_id=row.winning_registration_id,
        resolution_note=row.resolution_note)


def _conflict_values(conflict: Conflict) -> dict:
    return dict(
        id=conflict.id, customer_id=conflict.customer_id, product_line=conflict.product_line,
        status=conflict.status.value, open_key=conflict.open_key,
        raised_at=conflict.raised_at, resolved_at=conflict.resolved_at,
        resolved_by=conflict.resolved_by,
        winning_registration_id=conflict.winning_registration_id,
        resolution_note=conflict.resolution_note)


class SqlConflicts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, conflict_id: str, *, for_update: bool = False) -> Conflict | None:
        row = await _get(self.session, conflicts_table, conflict_id, for_update)
        return _conflict(row) if row else None

    async def open_on(self, customer_id: str, product_line: str) -> Conflict | None:
        row = (await self.session.execute(select(conflicts_table).where(
            conflicts_table.c.open_key == active_key(customer_id, product_line)))).first()
        return _conflict(row) if row else None

    async def add(self, conflict: Conflict) -> None:
        try:
            await self.session.execute(insert(conflicts_table).values(
                **_conflict_values(conflict)))
        except IntegrityError as exc:
            raise AlreadyStored(f"open conflict on {conflict.open_key}") from exc

    async def save(self, conflict: Conflict) -> None:
        await self.session.execute(update(conflicts_table).where(
            conflicts_table.c.id == conflict.id).values(**_conflict_values(conflict)))

    async def page(self, which: ConflictFilter, page: PageRequest) -> Page[Conflict]:
        c, q, r = conflicts_table.c, which.query, registrations_table.c
        statement = select(conflicts_table).order_by(c.raised_at.desc(), c.id)
        if q.status is not None:
            statement = statement.where(c.status == q.status.value)
        if q.product_line:
            statement = statement.where(c.product_line == q.product_line)
        involved = []
        if q.dealer_id:
            involved.append(r.dealer_id == q.dealer_id)
        if q.region_code:
            involved.append(r.region_code == q.region_code)
        if which.dealer_ids is not None:
            involved.append(r.dealer_id.in_(which.dealer_ids))
        if involved:
            statement = statement.where(c.id.in_(select(r.conflict_id).where(and_(*involved))))
        return await _page(self.session, statement, page, _conflict)


def _note(row) -> Note:
    return Note(id=row.id, registration_id=row.registration_id, text=row.text,
                stage=row.stage, created_at=aware(row.created_at), created_by=row.created_by,
                next_step=row.next_step, next_step_due=row.next_step_due)


class SqlNotes:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, note: Note) -> None:
        await self.session.execute(insert(notes_table).values(
            id=note.id, registration_id=note.registration_id, text=note.text,
            stage=note.stage, next_step=note.next_step, next_step_due=note.next_step_due,
            created_at=note.created_at, created_by=note.created_by))

    async def page(self, registration_id: str, page: PageRequest) -> Page[Note]:
        c = notes_table.c
        return await _page(self.session, select(notes_table).where(
            c.registration_id == registration_id).order_by(c.created_at.desc(), c.id),
            page, _note)


# leads

def _lead(row) -> Lead:
    return Lead(
        id=row.id, customer_name=row.customer_name, division_code=row.division_code,
        product_line=row.product_line, status=LeadStatus(row.status),
        created_at=aware(row.created_at), created_by=row.created_by,
        customer_id=row.customer_id, address=row.address, department=row.department,
        contact_name=row.contact_name, contact_phone=row.contact_phone, note=row.note,
        assigned_dealer_id=row.assigned_dealer_id, assigned_at=_at(row.assigned_at),
        claim_deadline=_at(row.claim_deadline), claimed_at=_at(row.claimed_at),
        claimed_by=row.claimed_by, registration_id=row.registration_id,
        return_count=row.return_count)


def _lead_values(lead: Lead) -> dict:
    values = dict(lead.__dict__)
    values["status"] = lead.status.value
    return values


class SqlLeads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, lead_id: str, *, for_update: bool = False) -> Lead | None:
        row = await _get(self.session, leads_table, lead_id, for_update)
        return _lead(row) if row else None

    async def add(self, lead: Lead) -> None:
        await self.session.execute(insert(leads_table).values(**_lead_values(lead)))

    async def move_customer(self, from_id: str, to_id: str) -> None:
        await self.session.execute(update(leads_table).where(
            leads_table.c.customer_id == from_id).values(customer_id=to_id))

    async def save(self, lead: Lead) -> None:
        await self.session.execute(update(leads_table).where(
            leads_table.c.id == lead.id).values(**_lead_values(lead)))

    async def page(self, which: LeadFilter, page: PageRequest) -> Page[Lead]:
        c, q = leads_table.c, which.query
        statement = select(leads_table).order_by(c.created_at.desc(), c.id)
        if which.dealer_ids is not None:
            visible = c.assigned_dealer_id.in_(which.dealer_ids)
            if which.with_pool:
                visible = or_(visible, c.assigned_dealer_id == "")
            statement = statement.where(visible)
        if q.statuses:
            statement = statement.where(c.status.in_([s.value for s in q.statuses]))
        if q.assigned_dealer_id:
            statement = statement.where(c.assigned_dealer_id == q.assigned_dealer_id)
        if q.division_code:
            statement = statement.where(
                c.division_code.startswith(divisions.prefix(q.division_code)))
        if q.product_line:
            statement = statement.where(c.product_line == q.product_line)
        return await _page(self.session, statement, page, _lead)

    async def assigned_counts(self, dealer_ids: Iterable[str]) -> dict[str, int]:
        c = leads_table.c
        rows = await _rows(self.session, select(c.assigned_dealer_id, func.count()).where(
            c.status == LeadStatus.ASSIGNED.value, c.assigned_dealer_id.in_(list(dealer_ids)))
            .group_by(c.assigned_dealer_id))
        return dict(rows)

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        c = leads_table.c
        return list((await self.session.scalars(select(c.id).where(
            c.status == LeadStatus.ASSIGNED.value, c.claim_deadline < now)
            .limit(limit))).all())


# authorizations

def _authorization(row) -> Authorization:
    return Authorization(
        id=row.id, dealer_id=row.dealer_id, customer_id=row.customer_id,
        customer_name=row.customer_name, valid_from=row.valid_from, valid_to=row.valid_to,
        owner_user_id=row.owner_user_id, status=AuthStatus(row.status),
        granted_at=aware(row.granted_at), letter_no=row.letter_no, granted_by=row.granted_by,
        product_line=row.product_line, product_code=row.product_code,
        department=row.department, revoked_at=_at(row.revoked_at), revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason)


def _authorization_values(grant: Authorization) -> dict:
    values = dict(grant.__dict__)
    values["status"] = grant.status.value
    return values


LIVE = [AuthStatus.ACTIVE.value, AuthStatus.PENDING.value]


class SqlAuthorizations:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, grant_id: str, *, for_update: bool = False) -> Authorization | None:
        row = await _get(self.session, authorizations_table, grant_id, for_update)
        return _authorization(row) if row else None

    async def add(self, grant: Authorization) -> None:
        await self.session.execute(insert(authorizations_table).values(
            **_authorization_values(grant)))

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> None:
        await self.session.execute(update(authorizations_table).where(
            authorizations_table.c.customer_id == from_id).values(customer_id=to_id,
                                                                 customer_name=to_name))

    async def save(self, grant: Authorization) -> None:
        await self.session.execute(update(authorizations_table).where(
            authorizations_table.c.id == grant.id).values(**_authorization_values(grant)))

    async def page(self, which: AuthorizationFilter,
                   page: PageRequest) -> Page[Authorization]:
        c, q = authorizations_table.c, which.query
        statement = select(authorizations_table).order_by(c.granted_at.desc(), c.id)
        if which.dealer_ids is not None:
            statement = statement.where(c.dealer_id.in_(which.dealer_ids))
        for column, value in ((c.dealer_id, q.dealer_id), (c.customer_id, q.customer_id),
                              (c.product_line, q.product_line),
                              (c.owner_user_id, q.owner_user_id)):
            if value:
                statement = statement.where(column == value)
        if q.statuses:
            statement = statement.where(c.status.in_([s.value for s in q.statuses]))
        if q.valid_on:
            statement = statement.where(c.valid_from <= q.valid_on, c.valid_to >= q.valid_on)
        return await _page(self.session, statement, page, _authorization)

    async def owned_by(self, owner_user_id: str,
                       dealer_ids: frozenset[str] | None) -> list[Authorization]:
        c = authorizations_table.c
        statement = select(authorizations_table).where(c.owner_user_id == owner_user_id)
        if dealer_ids:
            statement = statement.where(c.dealer_id.in_(dealer_ids))
        return [_authorization(row) for row in await _rows(self.session, statement)]

    async def activate_started(self, today: date) -> int:
        c = authorizations_table.c
        result = await self.session.execute(update(authorizations_table).where(
            c.status == AuthStatus.PENDING.value, c.valid_from <= today.isoformat())
            .values(status=AuthStatus.ACTIVE.value))
        return result.rowcount

    async def lapsed(self, today: date, limit: int) -> list[str]:
        c = authorizations_table.c
        return list((await self.session.scalars(select(c.id).where(
            c.status.in_(LIVE), c.valid_to < today.isoformat()).limit(limit))).all())


# the dealer projection

def _dealer(row, managers: dict[str, str] | None = None) -> DealerView:
    return DealerView(row.id, row.name, row.tier, tuple(row.division_codes or ()),
                      tuple(row.product_lines or ()), row.region_code, row.active,
                      managers or {}, _at(row.last_lead_assigned_at))


class SqlDealers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, dealer_id: str) -> DealerView | None:
        row = await _get(self.session, dealers_table, dealer_id)
        if row is None:
            return None
        c = assignments_table.c
        managers: dict[str, str] = {}
        for product_line, manager in await _rows(self.session, select(
                c.product_line, c.manager_user_id).where(c.dealer_id == dealer_id)
                .order_by(c.manager_user_id)):
            managers.setdefault(product_line, manager)
        return _dealer(row, managers)

    async def upsert(self, dealer: DealerFacts, now: datetime) -> None:
        values = dict(name=dealer.name, tier=dealer.tier, region_code=dealer.region_code,
                      division_codes=list(dealer.division_codes),
                      product_lines=list(dealer.product_lines), active=dealer.active,
                      updated_at=now)
        await self.session.execute(
            dialect_insert(self.session, dealers_table).values(id=dealer.id, **values)
            .on_conflict_do_update(index_elements=[dealers_table.c.id], set_=values))

    async def active(self) -> list[DealerView]:
        rows = await _rows(self.session, select(dealers_table).where(dealers_table.c.active))
        return [_dealer(row) for row in rows]

    async def lead_assigned(self, dealer_id: str, moment: datetime) -> None:
        await self.session.execute(update(dealers_table).where(
            dealers_table.c.id == dealer_id).values(last_lead_assigned_at=moment))

    async def names(self, dealer_ids: Iterable[str]) -> dict[str, str]:
        c = dealers_table.c
        return dict(await _rows(self.session, select(c.id, c.name).where(
            c.id.in_(list(dealer_ids)))))

    async def assign(self, assignment: Assignment) -> None:
        await self.session.execute(
            dialect_insert(self.session, assignments_table)
            .values(manager_user_id=assignment.manager_user_id,
                    dealer_id=assignment.dealer_id, product_line=assignment.product_line)
            .on_conflict_do_nothing())

    async def unassign(self, assignment: Assignment) -> None:
        c = assignments_table.c
        await self.session.execute(delete(assignments_table).where(
            c.manager_user_id == assignment.manager_user_id,
            c.dealer_id == assignment.dealer_id, c.product_line == assignment.product_line))
