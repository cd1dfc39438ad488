"""The HQ lead pool (公海): HQ's leads go to an eligible dealer at once (territory,
product line, tier, load, round-robin); the dealer claims a lead before its deadline,
which registers the customer approved, or releases it back to the pool."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.registration.adapters.orm import CustomerRow, DealerRow, LeadRow, RegistrationRow
from services.registration.domain.rules import (
    LeadCandidate,
    LeadStatus,
    Status,
    active_key,
    pick_dealer,
    territory_violation,
)
from services.registration.usecases.common import (
    HQ_LEAD,
    LEAD_ADMINS,
    PIPELINE,
    PROTO_TO_LEAD,
    _aware,
    _new_id,
    _now,
    _row_error,
    lead_to_proto,
    page_args,
    registration_to_proto,
)
from services.registration.usecases.customers import CustomerUseCases
from services.registration.usecases.dealers import DealerUseCases
from shared import divisions
from shared.context import current_principal
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
from shared.pagination import decode_page_token
from shared.tabular import read_table
from shared.text import normalize_name


class LeadUseCases(CustomerUseCases, DealerUseCases):
    async def _lead_candidates(self, session, division_code: str, product_line: str,
                               exclude: set[str]) -> list[LeadCandidate]:
        dealers = (await session.scalars(select(DealerRow).where(DealerRow.active))).all()
        eligible = [d for d in dealers if d.id not in exclude
                    and product_line in (d.product_lines or [])
                    and divisions.in_territory(d.division_codes or [], division_code)]
        if not eligible:
            return []
        loads = dict((await session.execute(
            select(LeadRow.assigned_dealer_id, func.count())
            .where(LeadRow.status == LeadStatus.ASSIGNED,
                   LeadRow.assigned_dealer_id.in_([d.id for d in eligible]))
            .group_by(LeadRow.assigned_dealer_id))).all())
        return [LeadCandidate(d.id, d.tier, loads.get(d.id, 0), d.last_lead_assigned_at)
                for d in eligible]

    async def _assign(self, session, lead: LeadRow, dealer_id: str, auto: bool) -> None:
        now = _now()
        lead.status = LeadStatus.ASSIGNED
        lead.assigned_dealer_id = dealer_id
        lead.assigned_at = now
        lead.claim_deadline = now + timedelta(hours=self.policy.lead_claim_hours)
        await session.execute(update(DealerRow).where(DealerRow.id == dealer_id)
                              .values(last_lead_assigned_at=now))
        await session.flush()
        await self._event(session, LEAD_ASSIGNED, events_pb2.LeadAssigned(
            lead=lead_to_proto(lead), auto_assigned=auto), lead.id)
        await self._notify(session, dealer_id, "lead.assigned",
                           f"总部线索 {lead.customer_name}（{lead.product_line}）已分配给您，"
                           f"请在 {lead.claim_deadline:%Y-%m-%d %H:%M} UTC 前认领",
                           lead_id=lead.id)

    def _prepare_lead(self, data: pb.CreateLeadRequest, customer: CustomerRow | None,
                      where: str = "") -> dict:
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
            division, _ = self._division(address, data.division_code.strip(),
                                         where.rstrip(".") or "lead", violations)
            for violation in violations:
                if violation.field.endswith("division_code"):
                    violations[violations.index(violation)] = FieldViolation(
                        f"{where}division_code", violation.description)
        collect(violations)
        return dict(customer_id=customer.id if customer else "", customer_name=name,
                    address=address, division_code=division, product_line=product_line,
                    department=data.department.strip(), contact_name=data.contact_name.strip(),
                    contact_phone=data.contact_phone.strip(), note=data.note.strip())

    async def create_lead(self, request: pb.CreateLeadRequest) -> pb.Lead:
        if not current_principal().has_role(*LEAD_ADMINS):
            raise PermissionDenied("only HQ enters leads")
        customer = None
        if request.customer_id:
            customer = await self._customer_or_404(request.customer_id)
        values = self._prepare_lead(request, customer)
        async with self.db.write() as session:
            lead = await self._insert_lead(session, values)
        return lead_to_proto(lead)

    async def _insert_lead(self, session, values: dict) -> LeadRow:
        lead = LeadRow(id=_new_id(), status=LeadStatus.POOL, created_at=_now(),
                       created_by=current_principal().subject, **values)
        session.add(lead)
        await session.flush()
        await self._event(session, LEAD_CREATED, events_pb2.LeadCreated(
            lead=lead_to_proto(lead)), lead.id)
        chosen = pick_dealer(await self._lead_candidates(session, lead.division_code,
                                                         lead.product_line, set()))
        if chosen:
            await self._assign(session, lead, chosen, auto=True)
        return lead

    async def import_leads(self, request: pb.ImportLeadsRequest) -> pb.ImportLeadsResponse:
        if not current_principal().has_role(*LEAD_ADMINS):
            raise PermissionDenied("only HQ imports leads")
        table = await asyncio.to_thread(read_table, request.content, request.filename,
                                        request.format, request.encoding)
        names = {"customer_name": ("customer_name", "医院名称", "客户名称", "名称"),
                 "address": ("address", "地址"), "division_code": ("division_code", "区划代码"),
                 "product_line": ("product_line", "产品线"), "department": ("department", "科室"),
                 "contact_name": ("contact_name", "联系人"),
                 "contact_phone": ("contact_phone", "电话"), "note": ("note", "备注")}
        mapping = {k: table.column(*v) or "" for k, v in names.items()}
        errors, prepared = [], []
        for number, row in table.rows:
            data = pb.CreateLeadRequest(**{k: row.get(h, "") for k, h in mapping.items() if h})
            try:
                prepared.append(self._prepare_lead(data, None, "row."))
            except InvalidArgument as error:
                for violation in error.violations:
                    key = violation.field.split(".", 1)[-1]
                    errors.append(_row_error(number, mapping.get(key, ""), violation,
                                             row.get(mapping.get(key, ""), "")))
        if errors or request.dry_run:
            return pb.ImportLeadsResponse(accepted=not errors, errors=errors)
        assigned = 0
        async with self.db.write() as session:
            for values in prepared:
                lead = await self._insert_lead(session, values)
                assigned += lead.status == LeadStatus.ASSIGNED
        return pb.ImportLeadsResponse(accepted=True, created=len(prepared), assigned=assigned)

    async def assign_lead(self, lead_id: str, dealer_id: str, reason: str) -> pb.Lead:
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self._scope("registration.read")
        async with self.db.read() as session:
            lead = await session.get(LeadRow, lead_id)
        if lead is None or (lead.assigned_dealer_id
                            and not scope.allows(lead.assigned_dealer_id)):
            raise NotFound(f"lead {lead_id} not found")
        scope.require(dealer_id, "dealer")
        if not current_principal().has_role(*LEAD_ADMINS):
            raise PermissionDenied("only HQ assigns leads")
        dealer = await self.dealer(dealer_id)
        async with self.db.write() as session:
            lead = await session.get(LeadRow, lead_id)
            if lead is None:
                raise NotFound(f"lead {lead_id} not found")
            if lead.status not in (LeadStatus.POOL, LeadStatus.ASSIGNED):
                raise FailedPrecondition(f"lead {lead_id} is {lead.status}",
                                         reason="INVALID_STATE")
            problem = territory_violation(dealer, lead.division_code, lead.product_line)
            if problem is not None:
                raise FailedPrecondition(problem.description, violations=[problem],
                                         reason="OUTSIDE_TERRITORY")
            await self._assign(session, lead, dealer.id, auto=False)
        return lead_to_proto(lead)

    async def claim_lead(self, lead_id: str, dealer_id: str) -> tuple[pb.Lead, pb.Registration]:
        principal = current_principal()
        dealer_id = dealer_id or principal.dealer_id
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self._scope("registration.submit")
        scope.require(dealer_id)
        async with self.db.read() as session:
            lead = await session.get(LeadRow, lead_id)
        if lead is None or (lead.assigned_dealer_id != dealer_id
                            and not scope.allows(lead.assigned_dealer_id or "-")):
            raise NotFound(f"lead {lead_id} not found")
        if not principal.has_role(*PIPELINE):
            raise PermissionDenied("leads are claimed by the dealer or its managers")
        if lead.status != LeadStatus.ASSIGNED or lead.assigned_dealer_id != dealer_id:
            raise FailedPrecondition(f"lead {lead_id} is not assigned to dealer {dealer_id}",
                                     reason="NOT_ASSIGNED_TO_YOU")
        if _aware(lead.claim_deadline) <= _now():
            raise FailedPrecondition(f"the claim deadline of lead {lead_id} passed at "
                                     f"{_aware(lead.claim_deadline).isoformat()}",
                                     reason="CLAIM_DEADLINE_PASSED")
        dealer = await self.dealer(dealer_id)
        prepared = None
        if not lead.customer_id:
            prepared = self.prepare_customer(pb.CustomerInput(
                name=lead.customer_name, address=lead.address,
                division_code=lead.division_code), "lead")
        now = _now()
        new_rows = []
        try:
            async with self.db.write() as session:
                result = await session.execute(
                    update(LeadRow).where(LeadRow.id == lead_id,
                                          LeadRow.status == LeadStatus.ASSIGNED,
                                          LeadRow.assigned_dealer_id == dealer_id,
                                          LeadRow.claim_deadline > now)
                    .execution_options(synchronize_session=False)
                    .values(status=LeadStatus.CLAIMED, claimed_at=now,
                            claimed_by=principal.subject))
                if result.rowcount != 1:
                    raise FailedPrecondition(f"lead {lead_id} changed meanwhile",
                                             reason="CONCURRENT_CHANGE")
                request = pb.SubmitRegistrationRequest(customer_id=lead.customer_id)
                customer, is_new, _ = await self._target_customer(session, request, prepared)
                if is_new:
                    await self._insert_customer(session, customer)
                    new_rows.append(customer)
                row = RegistrationRow(
                    id=_new_id(), customer_id=customer.id, customer_name=customer.name,
                    dealer_id=dealer.id, region_code=dealer.region_code,
                    product_line=lead.product_line, status=Status.APPROVED,
                    active_key=active_key(customer.id, lead.product_line), source=HQ_LEAD,
                    lead_id=lead.id, submitted_at=now, submitted_by=principal.subject,
                    approver_user_id=dealer.managers.get(lead.product_line, ""),
                    decided_at=now, approved_at=now, decided_by="system",
                    decision_note=f"claimed HQ lead {lead.id}",
                    protected_until=self.policy.protected_until(now),
                    stage=self.policy.stages[0], department=lead.department, updated_at=now)
                session.add(row)
                await session.flush()
                await session.execute(update(LeadRow).where(LeadRow.id == lead_id).values(
                    registration_id=row.id, customer_id=customer.id))
                lead = await session.get(LeadRow, lead_id, populate_existing=True)
                await self._event(session, REGISTRATION_SUBMITTED,
                                  events_pb2.RegistrationSubmitted(
                                      registration=registration_to_proto(row)), row.id)
                await self._event(session, REGISTRATION_APPROVED,
                                  events_pb2.RegistrationApproved(
                                      registration=registration_to_proto(row),
                                      auto_approved=True), row.id)
                await self._event(session, LEAD_CLAIMED, events_pb2.LeadClaimed(
                    lead=lead_to_proto(lead), registration_id=row.id), lead.id)
        except IntegrityError as exc:
            raise FailedPrecondition("another dealer already holds this customer for "
                                     f"{lead.product_line}; the lead stays assigned",
                                     reason="CUSTOMER_ALREADY_REGISTERED") from exc
        self._after_commit_index(new_rows)
        return lead_to_proto(lead), registration_to_proto(row, scope)

    async def release_lead(self, lead_id: str, reason: str) -> pb.Lead:
        principal = current_principal()
        scope = await self._scope("registration.submit")
        async with self.db.write() as session:
            lead = await session.get(LeadRow, lead_id)
            if lead is None or not (scope.allows(lead.assigned_dealer_id or "-")
                                    or (principal.has_role(*LEAD_ADMINS)
                                        and not lead.assigned_dealer_id)):
                raise NotFound(f"lead {lead_id} not found")
            if not principal.has_role(*PIPELINE):
                raise PermissionDenied("leads are released by the dealer or its managers")
            previous = lead.assigned_dealer_id
            result = await session.execute(
                update(LeadRow).where(LeadRow.id == lead_id,
                                      LeadRow.status == LeadStatus.ASSIGNED)
                .values(status=LeadStatus.POOL, assigned_dealer_id="", assigned_at=None,
                        claim_deadline=None, return_count=LeadRow.return_count + 1))
            if result.rowcount != 1:
                raise FailedPrecondition(f"lead {lead_id} is {lead.status}, not assigned",
                                         reason="INVALID_STATE")
            await session.refresh(lead)
            await self._event(session, LEAD_RETURNED, events_pb2.LeadReturned(
                lead=lead_to_proto(lead), previous_dealer_id=previous, deadline_passed=False,
                reason=reason.strip()), lead.id)
        return lead_to_proto(lead)

    async def list_leads(self, request: pb.ListLeadsRequest):
        principal = current_principal()
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        query = select(LeadRow).order_by(LeadRow.created_at.desc(), LeadRow.id)
        if not scope.all_dealers:
            visible = LeadRow.assigned_dealer_id.in_(scope.dealer_ids)
            if principal.has_role(*LEAD_ADMINS):  # HQ staff also see the unassigned pool
                visible = or_(visible, LeadRow.assigned_dealer_id == "")
            query = query.where(visible)
        if request.statuses:
            query = query.where(LeadRow.status.in_(
                [PROTO_TO_LEAD[s] for s in request.statuses if s in PROTO_TO_LEAD]))
        if request.assigned_dealer_id:
            query = query.where(LeadRow.assigned_dealer_id == request.assigned_dealer_id)
        if request.division_code:
            query = query.where(LeadRow.division_code.startswith(
                divisions.prefix(request.division_code)))
        if request.product_line:
            query = query.where(LeadRow.product_line == request.product_line)
        return await self._page(query, decode_page_token(token), size, lead_to_proto)
