"""The HQ lead pool (公海): HQ's leads go to an eligible dealer at once (territory,
product line, tier, load, round-robin); the dealer claims a lead before its deadline,
which registers the customer approved, or releases it back to the pool."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.registration import messages
from services.registration.domain.customers import Customer, CustomerInput
from services.registration.domain.imports import ImportReport, RowError, row_error
from services.registration.domain.leads import Claimed, Lead, LeadFilter, LeadInput, LeadQuery
from services.registration.domain.registrations import (
    AlreadyStored,
    Notice,
    Registration,
    SlotTaken,
    Source,
)
from services.registration.domain.roles import LEAD_ADMINS, PIPELINE
from services.registration.domain.rules import (
    LeadCandidate,
    LeadStatus,
    Policy,
    Status,
    pick_dealer,
    territory_violation,
)
from services.registration.usecases.customers import (
    add_customer,
    place_division,
    prepare_customer,
    remember,
    target_customer,
)
from services.registration.usecases.dealers import dealer_of
from services.registration.usecases.notices import notify
from services.registration.usecases.ports import (
    Identity,
    Names,
    Places,
    RegistrationUnitOfWork,
)
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import (
    LEAD_ASSIGNED,
    LEAD_CLAIMED,
    LEAD_CREATED,
    LEAD_RETURNED,
    REGISTRATION_APPROVED,
    REGISTRATION_SUBMITTED,
)
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.tabular import Table
from shared.text import normalize_name

# Import headers accepted per field (English or Chinese).
LEAD_COLUMNS = {"customer_name": ("customer_name", "医院名称", "客户名称", "名称"),
                "address": ("address", "地址"), "division_code": ("division_code", "区划代码"),
                "product_line": ("product_line", "产品线"), "department": ("department", "科室"),
                "contact_name": ("contact_name", "联系人"),
                "contact_phone": ("contact_phone", "电话"), "note": ("note", "备注")}


def prepare_lead(data: LeadInput, customer: Customer | None, places: Places,
                 where: str = "") -> LeadInput:
    """A lead input validated: a known customer's name and place, or a name and an
    address (or division) that places it. Bad fields are named with ``where`` first."""
    violations: list[FieldViolation] = []
    product_line = data.product_line.strip()
    if not product_line:
        violations.append(FieldViolation(f"{where}product_line", "is required"))
    if customer is not None:
        name, address, division = customer.name, customer.address, customer.division_code
    else:
        name = " ".join(data.customer_name.split())
        address = " ".join(data.address.split())
        if not name:
            violations.append(FieldViolation(f"{where}customer_name",
                                             "is required without customer_id"))
        elif not normalize_name(name):
            violations.append(FieldViolation(f"{where}customer_name", "normalizes to nothing"))
        division, _ = place_division(address, data.division_code.strip(),
                                     f"{where}division_code", places, violations)
    collect(violations)
    return LeadInput(customer_id=customer.id if customer else "", customer_name=name,
                     address=address, division_code=division, product_line=product_line,
                     department=data.department.strip(), contact_name=data.contact_name.strip(),
                     contact_phone=data.contact_phone.strip(), note=data.note.strip())


async def _assign(uow: RegistrationUnitOfWork, lead: Lead, dealer_id: str, *, auto: bool,
                  now: datetime, policy: Policy) -> Lead:
    lead = replace(lead, status=LeadStatus.ASSIGNED, assigned_dealer_id=dealer_id,
                   assigned_at=now,
                   claim_deadline=now + timedelta(hours=policy.lead_claim_hours))
    await uow.leads.save(lead)
    await uow.dealers.lead_assigned(dealer_id, now)
    uow.events.record(LEAD_ASSIGNED, messages.lead_assigned(lead, auto), lead.id)
    notify(uow, Notice(dealer_id, "lead.assigned",
                       f"总部线索 {lead.customer_name}（{lead.product_line}）已分配给您，"
                       f"请在 {lead.claim_deadline:%Y-%m-%d %H:%M} UTC 前认领", lead_id=lead.id))
    return lead


@dataclass
class Roster:
    """The active dealers with their open leads and last assignment, read once per
    transaction and kept current as its leads are assigned: an import of 100,000 leads
    read them again for every row, a count that grew with every lead (quadratic)."""

    dealers: list
    loads: dict[str, int]
    last_assigned: dict[str, datetime | None]

    @classmethod
    async def read(cls, uow: RegistrationUnitOfWork) -> Roster:
        dealers = await uow.dealers.active()
        loads = await uow.leads.assigned_counts(d.id for d in dealers)
        return cls(dealers, dict(loads), {d.id: d.last_lead_assigned_at for d in dealers})

    def pick(self, lead: Lead, now: datetime) -> str | None:
        """The dealer the rule gives the lead to (counted as assigned), or None."""
        chosen = pick_dealer([
            LeadCandidate(d.id, d.tier, self.loads.get(d.id, 0), self.last_assigned[d.id])
            for d in self.dealers
            if lead.product_line in d.product_lines and d.covers(lead.division_code)])
        if chosen is not None:
            self.loads[chosen] = self.loads.get(chosen, 0) + 1
            self.last_assigned[chosen] = now
        return chosen


async def _enter(uow: RegistrationUnitOfWork, values: LeadInput, *, who: Principal,
                 clock: Clock, ids: IdSource, policy: Policy,
                 roster: Roster | None = None) -> Lead:
    """Put a lead into the pool and give it at once to the dealer the rule picks, if any:
    active, carrying the product line, covering the lead's division."""
    now = clock.now()
    lead = Lead(id=ids.new_id(), status=LeadStatus.POOL, created_at=now,
                created_by=who.subject, **values.__dict__)
    await uow.leads.add(lead)
    uow.events.record(LEAD_CREATED, messages.lead_created(lead), lead.id)
    chosen = (roster or await Roster.read(uow)).pick(lead, now)
    if chosen is None:
        return lead
    return await _assign(uow, lead, chosen, auto=True, now=now, policy=policy)


async def create_lead(data: LeadInput, *, who: Principal, uow: RegistrationUnitOfWork,
                      clock: Clock, ids: IdSource, places: Places, policy: Policy) -> Lead:
    """HQ enters a lead; it comes back already assigned when a dealer covers it."""
    if not who.has_role(*LEAD_ADMINS):
        raise PermissionDenied("only HQ enters leads")
    customer = None
    if data.customer_id:
        async with uow.read():
            customer = await uow.customers.get(data.customer_id)
        if customer is None:
            raise NotFound(f"customer {data.customer_id} not found")
    values = prepare_lead(data, customer, places)
    async with uow:
        lead = await _enter(uow, values, who=who, clock=clock, ids=ids, policy=policy)
        await uow.commit()
    return lead


async def import_leads(table: Table, *, dry_run: bool, who: Principal,
                       uow: RegistrationUnitOfWork, clock: Clock, ids: IdSource,
                       places: Places, policy: Policy) -> ImportReport:
    """All or nothing, every failing row reported; the leads are assigned as entered."""
    if not who.has_role(*LEAD_ADMINS):
        raise PermissionDenied("only HQ imports leads")
    mapping = {key: table.column(*headers) or "" for key, headers in LEAD_COLUMNS.items()}
    errors: list[RowError] = []
    prepared: list[LeadInput] = []
    for number, row in table.rows:
        data = LeadInput(**{key: row.get(header, "") for key, header in mapping.items()
                            if header})
        try:
            prepared.append(prepare_lead(data, None, places, "row."))
        except InvalidArgument as error:
            for violation in error.violations:
                column = mapping.get(violation.field.split(".", 1)[-1], "")
                errors.append(row_error(number, column, violation, row.get(column, "")))
    if errors or dry_run:
        return ImportReport(accepted=not errors, errors=tuple(errors))
    async with uow:
        roster = await Roster.read(uow)
        leads = [await _enter(uow, values, who=who, clock=clock, ids=ids, policy=policy,
                              roster=roster)
                 for values in prepared]
        await uow.commit()
    return ImportReport(accepted=True, created=len(leads),
                        assigned=sum(lead.status == LeadStatus.ASSIGNED for lead in leads))


async def assign_lead(lead_id: str, dealer_id: str, reason: str, *, who: Principal,
                      uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes,
                      identity: Identity, policy: Policy) -> Lead:
    """HQ assigns (or reassigns) a lead by hand, inside the dealer's territory."""
    if not dealer_id:
        raise InvalidArgument.field("dealer_id", "is required")
    scope = await scopes.resolve(who, "registration.read")
    async with uow.read():
        lead = await uow.leads.get(lead_id)
    if lead is None or (lead.assigned_dealer_id and not scope.allows(lead.assigned_dealer_id)):
        raise NotFound(f"lead {lead_id} not found")
    scope.require(dealer_id, "dealer")
    if not who.has_role(*LEAD_ADMINS):
        raise PermissionDenied("only HQ assigns leads")
    dealer = await dealer_of(dealer_id, uow=uow, identity=identity, clock=clock)
    async with uow:
        lead = await uow.leads.get(lead_id, for_update=True)
        if lead is None:
            raise NotFound(f"lead {lead_id} not found")
        if lead.status not in (LeadStatus.POOL, LeadStatus.ASSIGNED):
            raise FailedPrecondition(f"lead {lead_id} is {lead.status.value}",
                                     reason="INVALID_STATE")
        problem = territory_violation(dealer, lead.division_code, lead.product_line)
        if problem is not None:
            raise FailedPrecondition(problem.description, violations=[problem],
                                     reason="OUTSIDE_TERRITORY")
        lead = await _assign(uow, lead, dealer.id, auto=False, now=clock.now(), policy=policy)
        await uow.commit()
    return lead


async def claim_lead(lead_id: str, dealer_id: str, *, who: Principal,
                     uow: RegistrationUnitOfWork, clock: Clock, ids: IdSource, scopes: Scopes,
                     identity: Identity, names: Names, places: Places,
                     policy: Policy) -> Claimed:
    """The assigned dealer accepts the lead before its deadline: the customer (created
    if new) is registered for it, approved and protected, with source HQ lead."""
    dealer_id = dealer_id or who.dealer_id
    if not dealer_id:
        raise InvalidArgument.field("dealer_id", "is required")
    scope = await scopes.resolve(who, "registration.submit")
    scope.require(dealer_id)
    async with uow.read():
        lead = await uow.leads.get(lead_id)
    if lead is None or (lead.assigned_dealer_id != dealer_id
                        and not scope.allows(lead.assigned_dealer_id or "-")):
        raise NotFound(f"lead {lead_id} not found")
    if not who.has_role(*PIPELINE):
        raise PermissionDenied("leads are claimed by the dealer or its managers")
    if lead.status != LeadStatus.ASSIGNED or lead.assigned_dealer_id != dealer_id:
        raise FailedPrecondition(f"lead {lead_id} is not assigned to dealer {dealer_id}",
                                 reason="NOT_ASSIGNED_TO_YOU")
    if lead.claim_deadline <= clock.now():
        raise FailedPrecondition(f"the claim deadline of lead {lead_id} passed at "
                                 f"{lead.claim_deadline.isoformat()}",
                                 reason="CLAIM_DEADLINE_PASSED")
    dealer = await dealer_of(dealer_id, uow=uow, identity=identity, clock=clock)
    values = None if lead.customer_id else prepare_customer(
        CustomerInput(name=lead.customer_name, address=lead.address,
                      division_code=lead.division_code), "lead", places)
    now = clock.now()
    try:
        async with uow:
            lead = await uow.leads.get(lead_id, for_update=True)
            if not (lead.status == LeadStatus.ASSIGNED and lead.assigned_dealer_id == dealer_id
                    and lead.claim_deadline > now):
                raise FailedPrecondition(f"lead {lead_id} changed meanwhile",
                                         reason="CONCURRENT_CHANGE")
            customer, is_new, _ = await target_customer(uow, lead.customer_id, values, who=who,
                                                        clock=clock, ids=ids, names=names,
                                                        policy=policy)
            if is_new:
                await add_customer(uow, customer)
            registration = Registration(
                id=ids.new_id(), customer_id=customer.id, customer_name=customer.name,
                dealer_id=dealer.id, region_code=dealer.region_code,
                product_line=lead.product_line, status=Status.APPROVED, holds_slot=True,
                source=Source.HQ_LEAD, lead_id=lead.id, submitted_at=now,
                submitted_by=who.subject,
                approver_user_id=dealer.managers.get(lead.product_line, ""), decided_at=now,
                approved_at=now, decided_by="system", decision_note=f"claimed HQ lead {lead.id}",
                protected_until=policy.protected_until(now), stage=policy.stages[0],
                department=lead.department, updated_at=now)
            await uow.registrations.add(registration)
            lead = replace(lead, status=LeadStatus.CLAIMED, claimed_at=now,
                           claimed_by=who.subject, registration_id=registration.id,
                           customer_id=customer.id)
            await uow.leads.save(lead)
            uow.events.record(REGISTRATION_SUBMITTED,
                              messages.registration_submitted(registration), registration.id)
            uow.events.record(REGISTRATION_APPROVED,
                              messages.registration_approved(registration, True),
                              registration.id)
            uow.events.record(LEAD_CLAIMED, messages.lead_claimed(lead), lead.id)
            await uow.commit()
    except (SlotTaken, AlreadyStored) as exc:
        raise FailedPrecondition("another dealer already holds this customer for "
                                 f"{lead.product_line}; the lead stays assigned",
                                 reason="CUSTOMER_ALREADY_REGISTERED") from exc
    if is_new:
        remember(names, [customer])
    return Claimed(lead, registration.seen_by(scope))


async def release_lead(lead_id: str, reason: str, *, who: Principal,
                       uow: RegistrationUnitOfWork, scopes: Scopes) -> Lead:
    """The assigned dealer gives the lead back to the pool."""
    scope = await scopes.resolve(who, "registration.submit")
    async with uow:
        lead = await uow.leads.get(lead_id, for_update=True)
        if lead is None or not (scope.allows(lead.assigned_dealer_id or "-")
                                or (who.has_role(*LEAD_ADMINS) and not lead.assigned_dealer_id)):
            raise NotFound(f"lead {lead_id} not found")
        if not who.has_role(*PIPELINE):
            raise PermissionDenied("leads are released by the dealer or its managers")
        if lead.status != LeadStatus.ASSIGNED:
            raise FailedPrecondition(f"lead {lead_id} is {lead.status.value}, not assigned",
                                     reason="INVALID_STATE")
        lead = await return_to_pool(uow, lead, deadline_passed=False, reason=reason.strip())
        await uow.commit()
    return lead


async def return_to_pool(uow: RegistrationUnitOfWork, lead: Lead, *, deadline_passed: bool,
                         reason: str) -> Lead:
    previous = lead.assigned_dealer_id
    lead = replace(lead, status=LeadStatus.POOL, assigned_dealer_id="", assigned_at=None,
                   claim_deadline=None, return_count=lead.return_count + 1)
    await uow.leads.save(lead)
    uow.events.record(LEAD_RETURNED, messages.lead_returned(
        lead, previous, deadline_passed=deadline_passed, reason=reason), lead.id)
    return lead


async def list_leads(query: LeadQuery, page: PageRequest, *, who: Principal,
                     uow: RegistrationUnitOfWork, scopes: Scopes) -> Page[Lead]:
    """Newest first: the leads of the viewer's dealers; HQ staff also see the pool."""
    scope = await scopes.resolve(who, "registration.read")
    which = LeadFilter(query, None if scope.all_dealers else scope.dealer_ids,
                       with_pool=who.has_role(*LEAD_ADMINS))
    async with uow.read():
        return await uow.leads.page(which, page)
