"""Registration use cases: customers and the duplicate check, registrations (报备) with
first-come protection, conflicts, the lead pool, the pipeline and authorizations. Each
loads through a unit of work, applies the domain rules, records its events in the
outbox, and commits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from qudao.common.v1 import customer_source_pb2, files_pb2
from qudao.identity.v1 import identity_pb2
from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import and_, func, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.registration.adapters import places
from services.registration.adapters.letters import Letter, to_pdf, to_xlsx
from services.registration.adapters.name_index import NameIndex
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
from services.registration.adapters.tabular import read_rows
from services.registration.domain import divisions
from services.registration.domain.matching import Match, MatchKind, Verdict, rank, verdict_of
from services.registration.domain.rules import (
    PENDING,
    AuthStatus,
    DealerView,
    LeadCandidate,
    LeadStatus,
    Policy,
    Status,
    active_key,
    clean_credit_code,
    credit_code_violations,
    parse_day,
    pick_dealer,
    territory_violation,
)
from shared.bus.outbox import Outbox
from shared.context import Principal, current_principal, outgoing_metadata
from shared.db import Database
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.logging import get_logger
from shared.pagination import decode_page_token, encode_page_token, page_size
from shared.scope import Scope, ScopeResolver
from shared.text import normalize_name

log = get_logger(__name__)

HQ_DECIDERS = ("hq_admin", "region_manager")
LEAD_ADMINS = ("hq_admin", "region_manager", "customer_service")
CUSTOMER_EDITORS = ("hq_admin", "region_manager", "customer_service", "channel_manager")
GRANTERS = ("hq_admin", "channel_manager")
APPROVERS = ("hq_admin", "region_manager", "channel_manager")
DEALER_STAFF = ("dealer_admin", "dealer_sales")
RECALLERS = (*DEALER_STAFF, "hq_admin")
# Who works a registration's pipeline and the dealer's leads (finance does not).
PIPELINE = (*DEALER_STAFF, "hq_admin", "region_manager", "channel_manager")

STATUS_TO_PROTO = {s: pb.RegistrationStatus.Value(f"REGISTRATION_STATUS_{s.name}")
                   for s in Status}
PROTO_TO_STATUS = {v: k for k, v in STATUS_TO_PROTO.items()}
LEAD_TO_PROTO = {s: pb.LeadStatus.Value(f"LEAD_STATUS_{s.name}") for s in LeadStatus}
PROTO_TO_LEAD = {v: k for k, v in LEAD_TO_PROTO.items()}
AUTH_TO_PROTO = {s: pb.AuthorizationStatus.Value(f"AUTHORIZATION_STATUS_{s.name}")
                 for s in AuthStatus}
PROTO_TO_AUTH = {v: k for k, v in AUTH_TO_PROTO.items()}
KIND_TO_PROTO = {MatchKind.CREDIT_CODE: pb.MATCH_KIND_CREDIT_CODE,
                 MatchKind.NORMALIZED_NAME: pb.MATCH_KIND_NORMALIZED_NAME,
                 MatchKind.ALIAS: pb.MATCH_KIND_ALIAS,
                 MatchKind.FUZZY_NAME: pb.MATCH_KIND_FUZZY_NAME}
VERDICT_TO_PROTO = {Verdict.NONE: pb.DUPLICATE_VERDICT_NONE,
                    Verdict.POSSIBLE_DUPLICATE: pb.DUPLICATE_VERDICT_POSSIBLE_DUPLICATE,
                    Verdict.DUPLICATE: pb.DUPLICATE_VERDICT_DUPLICATE}
DEALER_SOURCED = customer_source_pb2.CUSTOMER_SOURCE_DEALER_SOURCED
HQ_LEAD = customer_source_pb2.CUSTOMER_SOURCE_HQ_LEAD


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _set_ts(field, moment: datetime | None) -> None:
    if moment is not None:
        field.FromDatetime(_aware(moment))


def _new_id() -> str:
    return str(uuid.uuid4())


def page_args(page) -> tuple[int, str]:
    return page_size(page.page_size), page.page_token


# ---- conversions ---------------------------------------------------------------------

def customer_to_proto(row: CustomerRow) -> pb.Customer:
    customer = pb.Customer(
        id=row.id, name=row.name, normalized_name=row.normalized_name,
        aliases=list(row.aliases or []), credit_code=row.credit_code or "",
        address=row.address, division_code=row.division_code,
        division_code_overridden=row.division_overridden, city_code=row.city_code,
        customer_type=row.customer_type, grade=row.grade,
        departments=list(row.departments or []), created_by=row.created_by)
    _set_ts(customer.created_at, row.created_at)
    _set_ts(customer.updated_at, row.updated_at)
    return customer


def registration_to_proto(row: RegistrationRow, viewer: Scope | None = None
                          ) -> pb.Registration:
    """``viewer``: the scope of whoever reads it; other dealers' ids in the evidence are
    blanked for a viewer who may not see them."""
    registration = pb.Registration(
        id=row.id, customer_id=row.customer_id, customer_name=row.customer_name,
        dealer_id=row.dealer_id, product_line=row.product_line,
        status=STATUS_TO_PROTO[Status(row.status)], source=row.source, lead_id=row.lead_id,
        submitted_by=row.submitted_by, approver_user_id=row.approver_user_id,
        decided_by=row.decided_by, decision_note=row.decision_note,
        renewal_count=row.renewal_count, stage=row.stage, next_step=row.next_step,
        conflict_id=row.conflict_id, department=row.department)
    _set_ts(registration.submitted_at, row.submitted_at)
    _set_ts(registration.decided_at, row.decided_at)
    _set_ts(registration.protected_until, row.protected_until)
    _set_ts(registration.updated_at, row.updated_at)
    if row.evidence:
        evidence = pb.CheckDuplicatesResponse.FromString(row.evidence)
        candidates = list(evidence.candidates)
        if viewer is not None and not viewer.all_dealers:
            candidates = [_hide_dealers(c, viewer) for c in candidates]
        registration.evidence.extend(candidates)
    return registration


def _hide_dealers(candidate: pb.DuplicateCandidate, viewer: Scope) -> pb.DuplicateCandidate:
    copy = pb.DuplicateCandidate()
    copy.CopyFrom(candidate)
    for claim in copy.claims:
        if not viewer.allows(claim.dealer_id):
            claim.dealer_id = ""
    return copy


def lead_to_proto(row: LeadRow) -> pb.Lead:
    lead = pb.Lead(
        id=row.id, customer_id=row.customer_id, customer_name=row.customer_name,
        address=row.address, division_code=row.division_code, product_line=row.product_line,
        department=row.department, contact_name=row.contact_name,
        contact_phone=row.contact_phone, note=row.note,
        status=LEAD_TO_PROTO[LeadStatus(row.status)],
        assigned_dealer_id=row.assigned_dealer_id, claimed_by=row.claimed_by,
        registration_id=row.registration_id, return_count=row.return_count,
        created_by=row.created_by)
    _set_ts(lead.assigned_at, row.assigned_at)
    _set_ts(lead.claim_deadline, row.claim_deadline)
    _set_ts(lead.claimed_at, row.claimed_at)
    _set_ts(lead.created_at, row.created_at)
    return lead


def authorization_to_proto(row: AuthorizationRow) -> pb.Authorization:
    grant = pb.Authorization(
        id=row.id, dealer_id=row.dealer_id, product_line=row.product_line,
        product_code=row.product_code, customer_id=row.customer_id,
        customer_name=row.customer_name, department=row.department,
        valid_from=row.valid_from, valid_to=row.valid_to, owner_user_id=row.owner_user_id,
        status=AUTH_TO_PROTO[AuthStatus(row.status)], granted_by=row.granted_by,
        revoked_by=row.revoked_by, revoke_reason=row.revoke_reason, letter_no=row.letter_no)
    _set_ts(grant.granted_at, row.granted_at)
    _set_ts(grant.revoked_at, row.revoked_at)
    return grant


def note_to_proto(row: NoteRow) -> pb.Note:
    note = pb.Note(id=row.id, registration_id=row.registration_id, text=row.text,
                   stage=row.stage, next_step=row.next_step, next_step_due=row.next_step_due,
                   created_by=row.created_by)
    _set_ts(note.created_at, row.created_at)
    return note


def dealer_view(row: DealerRow, managers: dict[str, str] | None = None) -> DealerView:
    return DealerView(row.id, row.name, row.tier, tuple(row.division_codes or ()),
                      tuple(row.product_lines or ()), row.region_code, row.active,
                      managers or {})


class PreparedCustomer:
    """A customer input validated and derived: normalized name, division, city."""

    def __init__(self, **values) -> None:
        self.values = values

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class RegistrationService:
    def __init__(self, db: Database, outbox: Outbox, scopes: ScopeResolver, identity,
                 index: NameIndex, policy: Policy, reads: async_sessionmaker | None = None
                 ) -> None:
        self.db = db
        # Sessions for read-only queries on the hot path (the duplicate check). On SQLite
        # the shared Database opens every transaction with BEGIN IMMEDIATE, taking the
        # write lock even to read; these read in WAL mode without it.
        self.reads = reads or db.sessions
        self.outbox = outbox
        self.scopes = scopes
        self.identity = identity
        self.index = index
        self.policy = policy

    # ---- helpers -------------------------------------------------------------------

    async def _scope(self, action: str) -> Scope:
        return await self.scopes.resolve(current_principal(), action)

    async def _event(self, session, entity: str, verb: str, payload, aggregate_id: str) -> None:
        await self.outbox.record(session, entity, verb, payload, aggregate_id)

    async def _notify(self, session, dealer_id: str, kind: str, message: str, *,
                      registration_id: str = "", conflict_id: str = "", lead_id: str = "") -> None:
        if not dealer_id:
            return
        await self._event(session, "dealer", "notified", events_pb2.DealerNotified(
            dealer_id=dealer_id, kind=kind, registration_id=registration_id,
            conflict_id=conflict_id, lead_id=lead_id, message=message), dealer_id)

    def _after_commit_index(self, rows: list[CustomerRow]) -> None:
        for row in rows:
            self.index.put_row(row)

    async def dealer(self, dealer_id: str) -> DealerView:
        """The dealer from the local projection, or read through from identity."""
        async with self.db.sessions() as session:
            row = await session.get(DealerRow, dealer_id)
            managers = {}
            if row is not None:
                for assignment in (await session.scalars(select(ManagerAssignmentRow).where(
                        ManagerAssignmentRow.dealer_id == dealer_id))).all():
                    managers.setdefault(assignment.product_line, assignment.manager_user_id)
        if row is not None:
            return dealer_view(row, managers)
        try:
            response = await self.identity.GetOrgUnit(
                identity_pb2.GetOrgUnitRequest(id=dealer_id), metadata=outgoing_metadata(),
                timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise NotFound(f"dealer {dealer_id} not found") from exc
        unit = response.org_unit
        if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
            raise NotFound(f"dealer {dealer_id} not found")
        async with self.db.unit_of_work() as session:
            row = await self.project_org_unit(session, unit)
        return dealer_view(row)

    async def project_org_unit(self, session, unit) -> DealerRow | None:
        if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
            return None
        row = await session.get(DealerRow, unit.id)
        if row is None:
            row = DealerRow(id=unit.id)
            session.add(row)
        row.name = unit.name
        row.tier = unit.tier
        row.region_code = unit.region_code
        row.division_codes = list(unit.division_codes)
        row.product_lines = list(unit.product_lines)
        row.active = unit.status in (identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED,
                                     identity_pb2.ORG_UNIT_STATUS_ACTIVE)
        row.updated_at = _now()
        await session.flush()
        return row

    # ---- identity events (consumers) ----------------------------------------------

    async def on_org_unit(self, session, event) -> None:
        await self.project_org_unit(session, event.payload.org_unit)
        self.scopes.invalidate()

    async def on_assignment_changed(self, session, event) -> None:
        change = event.payload
        for assignment in change.removed:
            row = await session.get(ManagerAssignmentRow, (
                assignment.manager_user_id, assignment.dealer_id, assignment.product_line))
            if row is not None:
                await session.delete(row)
        await session.flush()
        for assignment in change.added:
            key = (assignment.manager_user_id, assignment.dealer_id, assignment.product_line)
            if await session.get(ManagerAssignmentRow, key) is None:
                session.add(ManagerAssignmentRow(manager_user_id=key[0], dealer_id=key[1],
                                                 product_line=key[2]))
        await session.flush()
        if change.from_manager_user_id and change.to_manager_user_id:
            dealers = {a.dealer_id for a in change.added} or None
            query = select(AuthorizationRow).where(
                AuthorizationRow.owner_user_id == change.from_manager_user_id)
            if dealers:
                query = query.where(AuthorizationRow.dealer_id.in_(dealers))
            for grant in (await session.scalars(query)).all():
                grant.owner_user_id = change.to_manager_user_id
                await session.flush()
                await self._event(session, "authorization_owner", "changed",
                                  events_pb2.AuthorizationOwnerChanged(
                                      authorization=authorization_to_proto(grant),
                                      previous_owner_user_id=change.from_manager_user_id),
                                  grant.id)
            await session.execute(
                update(RegistrationRow)
                .where(RegistrationRow.approver_user_id == change.from_manager_user_id,
                       RegistrationRow.status.in_(list(PENDING)))
                .values(approver_user_id=change.to_manager_user_id))
        self.scopes.invalidate()

    # ---- customers -----------------------------------------------------------------

    def prepare_customer(self, data: pb.CustomerInput, where: str = "customer"
                         ) -> PreparedCustomer:
        violations: list[FieldViolation] = []
        name = " ".join((data.name or "").split())
        normalized = normalize_name(name)
        if not name:
            violations.append(FieldViolation(f"{where}.name", "is required"))
        elif not normalized:
            violations.append(FieldViolation(
                f"{where}.name", f"{name!r} normalizes to nothing: give the customer's name"))
        elif len(name) > 200:
            violations.append(FieldViolation(f"{where}.name", "must be at most 200 characters"))
        credit_code = clean_credit_code(data.credit_code)
        violations += credit_code_violations(credit_code, f"{where}.credit_code")
        address = " ".join((data.address or "").split())
        division_code, overridden = self._division(address, data.division_code.strip(), where,
                                                   violations)
        aliases = []
        for index, alias in enumerate(data.aliases):
            alias = " ".join(alias.split())
            if alias and not normalize_name(alias):
                violations.append(FieldViolation(f"{where}.aliases[{index}]",
                                                 "normalizes to nothing"))
            elif alias and alias not in aliases and alias != name:
                aliases.append(alias)
        departments = list(dict.fromkeys(d.strip() for d in data.departments if d.strip()))
        collect(violations)
        return PreparedCustomer(
            name=name, normalized=normalized, credit_code=credit_code or None, address=address,
            division_code=division_code, overridden=overridden,
            city_code=divisions.city_of(division_code), aliases=aliases,
            customer_type=data.customer_type or pb.CUSTOMER_TYPE_HOSPITAL,
            grade=data.grade.strip(), departments=departments)

    def _division(self, address: str, override: str, where: str,
                  violations: list[FieldViolation]) -> tuple[str, bool]:
        field_name = f"{where}.division_code"
        if override:
            if not (divisions.is_code(override) and places.is_known(override)):
                violations.append(FieldViolation(
                    field_name, f"{override!r} is not a GB/T 2260 division code"))
                return "", True
            if not divisions.city_of(override):
                violations.append(FieldViolation(
                    field_name, f"{override} is a province: pick a city or district"))
            return override, True
        placement = places.place(address)
        if not placement.code:
            violations.append(FieldViolation(
                field_name, f"the address {placement.problem}: pick the division "
                            f"(GB/T 2260 code) in {field_name}"))
            return "", False
        if not divisions.city_of(placement.code):
            violations.append(FieldViolation(
                field_name, f"the address names only a province ({placement.code}): pick a "
                            f"city or district in {field_name}"))
        return placement.code, False

    async def _matches(self, session, normalized: str, credit_code: str | None, city_code: str,
                       exclude: str = "", from_memory: bool = False) -> list[Match]:
        """Every customer the name or code may duplicate. Writes ask the database for the
        exact matches; the read-only check may answer them from the index's memory
        (``from_memory``), which is at most a refresh interval behind."""
        found: list[Match] = []
        if credit_code:
            ids = (await session.scalars(select(CustomerRow.id).where(
                CustomerRow.credit_code == credit_code))).all()
            found += [Match(i, MatchKind.CREDIT_CODE, 10000) for i in ids]
        if normalized and city_code and from_memory:
            found += self.index.exact(city_code, normalized)
            found += self.index.fuzzy(city_code, normalized, self.policy.fuzzy_threshold_bps)
        elif normalized and city_code:
            ids = (await session.scalars(select(CustomerRow.id).where(
                CustomerRow.city_code == city_code,
                CustomerRow.normalized_name == normalized))).all()
            found += [Match(i, MatchKind.NORMALIZED_NAME, 10000) for i in ids]
            ids = (await session.scalars(select(CustomerAliasRow.customer_id).where(
                CustomerAliasRow.city_code == city_code,
                CustomerAliasRow.normalized_alias == normalized))).all()
            found += [Match(i, MatchKind.ALIAS, 10000) for i in ids]
            found += self.index.fuzzy(city_code, normalized, self.policy.fuzzy_threshold_bps)
        return [m for m in rank(found) if m.customer_id != exclude]

    async def _evidence(self, session, matches: list[Match], product_line: str,
                        limit: int = 10) -> list[pb.DuplicateCandidate]:
        matches = matches[:limit]
        if not matches:
            return []
        ids = [m.customer_id for m in matches]
        customers = {row.id: row for row in (await session.scalars(
            select(CustomerRow).where(CustomerRow.id.in_(ids)))).all()}
        claims: dict[str, list[RegistrationRow]] = {}
        if product_line:
            for row in (await session.scalars(select(RegistrationRow).where(
                    RegistrationRow.customer_id.in_(ids),
                    RegistrationRow.product_line == product_line,
                    RegistrationRow.active_key.is_not(None)))).all():
                claims.setdefault(row.customer_id, []).append(row)
        result = []
        for match in matches:
            customer = customers.get(match.customer_id)
            if customer is None:
                continue
            candidate = pb.DuplicateCandidate(customer=customer_to_proto(customer),
                                              match_kind=KIND_TO_PROTO[match.kind],
                                              score_bps=match.score_bps)
            for claim in claims.get(match.customer_id, []):
                summary = pb.ClaimSummary(registration_id=claim.id, dealer_id=claim.dealer_id,
                                          product_line=claim.product_line,
                                          status=STATUS_TO_PROTO[Status(claim.status)])
                _set_ts(summary.submitted_at, claim.submitted_at)
                _set_ts(summary.protected_until, claim.protected_until)
                candidate.claims.append(summary)
            result.append(candidate)
        return result

    async def check_duplicates(self, request: pb.CheckDuplicatesRequest
                               ) -> pb.CheckDuplicatesResponse:
        violations: list[FieldViolation] = []
        normalized = normalize_name(request.name)
        credit_code = clean_credit_code(request.credit_code)
        violations += credit_code_violations(credit_code, "credit_code")
        if not normalized and not credit_code:
            violations.append(FieldViolation("name", "give a name that does not normalize to "
                                                     "nothing, or a credit code"))
        division_code = ""
        override = request.division_code.strip()
        if override:
            if not (divisions.is_code(override) and places.is_known(override)):
                violations.append(FieldViolation("division_code",
                                                 f"{override!r} is not a GB/T 2260 code"))
            division_code = override
        elif request.address.strip():
            division_code = places.place(request.address).code
        collect(violations)
        city_code = divisions.city_of(division_code)
        async with self.reads() as session:
            matches = await self._matches(session, normalized, credit_code or None, city_code,
                                          from_memory=True)
            candidates = await self._evidence(session, matches, request.product_line.strip())
        viewer = await self._scope("registration.read")
        if not viewer.all_dealers:
            candidates = [_hide_dealers(c, viewer) for c in candidates]
        return pb.CheckDuplicatesResponse(verdict=VERDICT_TO_PROTO[verdict_of(matches)],
                                          candidates=candidates, normalized_name=normalized,
                                          division_code=division_code)

    def _customer_row(self, prepared: PreparedCustomer, now: datetime) -> CustomerRow:
        return CustomerRow(
            id=_new_id(), name=prepared.name, normalized_name=prepared.normalized,
            aliases=prepared.aliases, credit_code=prepared.credit_code,
            address=prepared.address, division_code=prepared.division_code,
            division_overridden=prepared.overridden, city_code=prepared.city_code,
            customer_type=prepared.customer_type, grade=prepared.grade,
            departments=prepared.departments, created_at=now, updated_at=now,
            created_by=current_principal().subject)

    async def _insert_customer(self, session, row: CustomerRow) -> None:
        session.add(row)
        await session.flush()
        for alias in row.aliases:
            normalized = normalize_name(alias)
            if normalized and normalized != row.normalized_name and await session.get(
                    CustomerAliasRow, (row.city_code, normalized)) is None:
                session.add(CustomerAliasRow(city_code=row.city_code,
                                             normalized_alias=normalized, customer_id=row.id))
        await session.flush()
        await self._event(session, "customer", "created",
                          events_pb2.CustomerCreated(customer=customer_to_proto(row)), row.id)

    async def create_customer(self, data: pb.CustomerInput) -> pb.CreateCustomerResponse:
        prepared = self.prepare_customer(data)
        try:
            async with self.db.unit_of_work() as session:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
                exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
                if exact:
                    raise self._duplicate_error(exact[0])
                row = self._customer_row(prepared, _now())
                await self._insert_customer(session, row)
                possible = await self._evidence(session, matches, "")
        except IntegrityError:
            async with self.db.sessions() as session:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
            exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
            if exact:
                raise self._duplicate_error(exact[0]) from None
            raise
        self._after_commit_index([row])
        return pb.CreateCustomerResponse(customer=customer_to_proto(row),
                                         possible_duplicates=possible)

    @staticmethod
    def _duplicate_error(match: Match) -> AlreadyExists:
        kind = pb.MatchKind.Name(KIND_TO_PROTO[match.kind])
        return AlreadyExists(f"duplicate of customer {match.customer_id} ({kind})",
                             reason="DUPLICATE_CUSTOMER",
                             metadata={"customer_id": match.customer_id, "match_kind": kind})

    async def get_customer(self, customer_id: str) -> pb.Customer:
        async with self.db.sessions() as session:
            row = await session.get(CustomerRow, customer_id)
        if row is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer_to_proto(row)

    async def list_customers(self, request: pb.ListCustomersRequest):
        size, token = page_args(request.page)
        offset = decode_page_token(token)
        query = select(CustomerRow).order_by(CustomerRow.name, CustomerRow.id)
        text = request.query.strip()
        if text:
            normalized = normalize_name(text) or text
            query = query.where(or_(CustomerRow.name.contains(text),
                                    CustomerRow.normalized_name.contains(normalized),
                                    CustomerRow.credit_code == clean_credit_code(text)))
        if request.division_code:
            code = request.division_code.strip()
            if not divisions.is_code(code):
                raise InvalidArgument.field("division_code", f"{code!r} is not a division code")
            query = query.where(CustomerRow.division_code.startswith(divisions.prefix(code)))
        if request.customer_type:
            query = query.where(CustomerRow.customer_type == request.customer_type)
        async with self.db.sessions() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([customer_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def update_customer(self, customer_id: str, values: pb.Customer,
                              paths: list[str]) -> pb.Customer:
        if not current_principal().has_role(*CUSTOMER_EDITORS):
            raise PermissionDenied("only HQ and channel managers edit the customer master")
        allowed = {"name", "aliases", "credit_code", "address", "division_code",
                   "customer_type", "grade", "departments"}
        unknown = [p for p in paths if p not in allowed]
        if not paths or unknown:
            raise InvalidArgument.field("update_mask", f"give paths among {sorted(allowed)}"
                                        + (f"; unknown {unknown}" if unknown else ""))
        async with self.db.unit_of_work() as session:
            row = await session.get(CustomerRow, customer_id)
            if row is None:
                raise NotFound(f"customer {customer_id} not found")
            merged = pb.CustomerInput(
                name=values.name if "name" in paths else row.name,
                aliases=values.aliases if "aliases" in paths else row.aliases,
                credit_code=values.credit_code if "credit_code" in paths else (
                    row.credit_code or ""),
                address=values.address if "address" in paths else row.address,
                division_code=(values.division_code if "division_code" in paths
                               else (row.division_code if row.division_overridden
                                     and "address" not in paths else "")),
                customer_type=(values.customer_type if "customer_type" in paths
                               else row.customer_type),
                grade=values.grade if "grade" in paths else row.grade,
                departments=values.departments if "departments" in paths else row.departments)
            prepared = self.prepare_customer(merged, "customer")
            matches = await self._matches(session, prepared.normalized, prepared.credit_code,
                                          prepared.city_code, exclude=row.id)
            exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
            if exact:
                raise self._duplicate_error(exact[0])
            changed = []
            for attribute, value in (("name", prepared.name), ("aliases", prepared.aliases),
                                     ("credit_code", prepared.credit_code),
                                     ("address", prepared.address),
                                     ("division_code", prepared.division_code),
                                     ("customer_type", prepared.customer_type),
                                     ("grade", prepared.grade),
                                     ("departments", prepared.departments)):
                if getattr(row, attribute) != value:
                    setattr(row, attribute, value)
                    changed.append(attribute)
            row.normalized_name = prepared.normalized
            row.city_code = prepared.city_code
            row.division_overridden = prepared.overridden
            row.updated_at = _now()
            if "aliases" in changed or "division_code" in changed:
                for alias in (await session.scalars(select(CustomerAliasRow).where(
                        CustomerAliasRow.customer_id == row.id))).all():
                    await session.delete(alias)
                await session.flush()
                for alias in row.aliases:
                    normalized = normalize_name(alias)
                    if normalized and await session.get(
                            CustomerAliasRow, (row.city_code, normalized)) is None:
                        session.add(CustomerAliasRow(city_code=row.city_code,
                                                     normalized_alias=normalized,
                                                     customer_id=row.id))
            await session.flush()
            await self._event(session, "customer", "updated", events_pb2.CustomerUpdated(
                customer=customer_to_proto(row), changed_fields=changed), row.id)
        self._after_commit_index([row])
        return customer_to_proto(row)

    async def import_customers(self, request: pb.ImportCustomersRequest
                               ) -> pb.ImportCustomersResponse:
        if not current_principal().has_role(*CUSTOMER_EDITORS):
            raise PermissionDenied("only HQ and channel managers import customers")
        header, rows = read_rows(request.content, request.filename, request.format,
                                 request.encoding)
        columns = {"name": ("name", "名称", "医院名称", "客户名称"),
                   "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
                   "address": ("address", "地址"),
                   "division_code": ("division_code", "行政区划代码", "区划代码"),
                   "grade": ("grade", "等级"), "aliases": ("aliases", "别名"),
                   "departments": ("departments", "科室")}
        mapping = {key: next((h for h in header if h in names), "")
                   for key, names in columns.items()}
        if not mapping["name"]:
            raise InvalidArgument.field("content", "the header has no name column "
                                                   "(name / 名称 / 医院名称)")
        errors: list = []
        prepared_rows: list[tuple[int, PreparedCustomer]] = []
        seen: dict[tuple[str, str], int] = {}
        seen_codes: dict[str, int] = {}
        for number, row in enumerate(rows, start=2):
            def cell(key: str, row=row) -> str:
                return row.get(mapping[key], "") if mapping[key] else ""
            data = pb.CustomerInput(
                name=cell("name"), credit_code=cell("credit_code"), address=cell("address"),
                division_code=cell("division_code"), grade=cell("grade"),
                aliases=[a for a in cell("aliases").replace("；", ";").split(";") if a.strip()],
                departments=[d for d in cell("departments").replace("；", ";").split(";")
                             if d.strip()])
            try:
                prepared = self.prepare_customer(data, "row")
            except InvalidArgument as error:
                for violation in error.violations:
                    key = violation.field.split(".", 1)[1].split("[")[0]
                    errors.append(_row_error(number, mapping.get(key, ""), violation,
                                             cell(key) if key in mapping else ""))
                continue
            key = (prepared.city_code, prepared.normalized)
            if key in seen or (prepared.credit_code and prepared.credit_code in seen_codes):
                other = seen.get(key) or seen_codes.get(prepared.credit_code or "")
                errors.append(files_pb2.RowError(
                    row_number=number, column=mapping["name"], code="DUPLICATE_IN_FILE",
                    message_zh=f"与第 {other} 行重复", message_en=f"duplicates row {other}",
                    value=prepared.name))
                continue
            seen[key] = number
            if prepared.credit_code:
                seen_codes[prepared.credit_code] = number
            prepared_rows.append((number, prepared))
        async with self.db.sessions() as session:
            for number, prepared in prepared_rows:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
                exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
                if exact:
                    errors.append(files_pb2.RowError(
                        row_number=number, column=mapping["name"], code="DUPLICATE",
                        message_zh=f"与已有客户 {exact[0].customer_id} 重复",
                        message_en=f"duplicate of customer {exact[0].customer_id} "
                                   f"({pb.MatchKind.Name(KIND_TO_PROTO[exact[0].kind])})",
                        value=prepared.name))
        errors.sort(key=lambda e: (e.row_number, e.column))
        if errors or request.dry_run:
            return pb.ImportCustomersResponse(accepted=not errors, errors=errors)
        created_rows = []
        now = _now()
        try:
            async with self.db.unit_of_work() as session:
                for _, prepared in prepared_rows:
                    row = self._customer_row(prepared, now)
                    await self._insert_customer(session, row)
                    created_rows.append(row)
        except IntegrityError as exc:
            raise FailedPrecondition("another change created one of these customers while "
                                     "importing; nothing was written, import again",
                                     reason="CONCURRENT_CHANGE") from exc
        self._after_commit_index(created_rows)
        return pb.ImportCustomersResponse(accepted=True, created=len(created_rows))

    # ---- registrations ---------------------------------------------------------------

    async def submit_registration(self, request: pb.SubmitRegistrationRequest
                                  ) -> pb.SubmitRegistrationResponse:
        principal = current_principal()
        dealer_id = request.dealer_id.strip() or principal.dealer_id
        violations = []
        if not dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        product_line = request.product_line.strip()
        if not product_line:
            violations.append(FieldViolation("product_line", "is required"))
        which = request.WhichOneof("customer")
        if which is None:
            violations.append(FieldViolation("customer_id", "give customer_id or new_customer"))
        if len(request.client_request_id) > 64:
            violations.append(FieldViolation("client_request_id", "at most 64 characters"))
        collect(violations)
        scope = await self._scope("registration.submit")
        scope.require(dealer_id)
        if request.client_request_id:
            existing = await self._by_request_id(dealer_id, request.client_request_id)
            if existing is not None:
                return pb.SubmitRegistrationResponse(
                    registration=registration_to_proto(existing, scope))
        dealer = await self.dealer(dealer_id)
        if not dealer.active:
            raise FailedPrecondition(f"dealer {dealer.name} is not active",
                                     reason="DEALER_INACTIVE")
        prepared = (self.prepare_customer(request.new_customer, "new_customer")
                    if which == "new_customer" else None)
        if product_line not in dealer.product_lines:
            problem = territory_violation(dealer, "", product_line)
            raise InvalidArgument(problem.description, violations=[problem],
                                  reason="PRODUCT_LINE_NOT_CARRIED")
        attempts = 6
        for attempt in range(attempts):
            try:
                try:
                    return await self._submit_once(request, principal, dealer, product_line,
                                                   prepared, scope)
                except IntegrityError as exc:
                    text = str(exc.orig if exc.orig is not None else exc).lower()
                    if "active_key" not in text:
                        raise
                # The database let another registration take the slot first: this one
                # loses, with the winner's evidence. (Two losers opening the same
                # conflict at once: the second joins it on the next attempt.)
                return await self._lose(request, principal, dealer, product_line, prepared,
                                        scope)
            except IntegrityError as exc:
                text = str(exc.orig if exc.orig is not None else exc).lower()
                if "client_request_id" in text or "dealer_request" in text:
                    existing = await self._by_request_id(dealer.id, request.client_request_id)
                    if existing is not None:
                        return pb.SubmitRegistrationResponse(
                            registration=registration_to_proto(existing, scope))
                if attempt == attempts - 1:
                    raise
                # A concurrent submission created the same new customer (or conflict):
                # go again; it is an exact duplicate now.
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _by_request_id(self, dealer_id: str, request_id: str) -> RegistrationRow | None:
        async with self.db.sessions() as session:
            return (await session.scalars(select(RegistrationRow).where(
                RegistrationRow.dealer_id == dealer_id,
                RegistrationRow.client_request_id == request_id))).first()

    async def _target_customer(self, session, request, prepared: PreparedCustomer | None
                               ) -> tuple[CustomerRow, bool, list[Match]]:
        """The customer registered: (row, is new, fuzzy matches of a new one)."""
        if prepared is None:
            row = await session.get(CustomerRow, request.customer_id)
            if row is None:
                raise NotFound(f"customer {request.customer_id} not found")
            return row, False, []
        matches = await self._matches(session, prepared.normalized, prepared.credit_code,
                                      prepared.city_code)
        exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
        if exact:
            return await session.get(CustomerRow, exact[0].customer_id), False, []
        return self._customer_row(prepared, _now()), True, matches

    async def _submit_once(self, request, principal: Principal, dealer: DealerView,
                           product_line: str, prepared, viewer: Scope
                           ) -> pb.SubmitRegistrationResponse:
        now = _now()
        new_rows = []
        async with self.db.unit_of_work() as session:
            customer, is_new, fuzzy = await self._target_customer(session, request, prepared)
            problem = territory_violation(dealer, customer.division_code, product_line)
            if problem is not None:
                raise FailedPrecondition(problem.description, violations=[problem],
                                         reason="OUTSIDE_TERRITORY")
            if is_new:
                await self._insert_customer(session, customer)
                new_rows.append(customer)
            # Evidence: the customer itself and its look-alikes, with their claims.
            matches = await self._matches(session, customer.normalized_name,
                                          customer.credit_code, customer.city_code)
            others = [m for m in matches if m.customer_id != customer.id]
            # A new customer is not evidence about itself.
            evidence = await self._evidence(session, others if is_new else matches,
                                            product_line)
            review = is_new and bool(fuzzy)
            clean = not review and not any(c.claims for c in evidence)
            status = Status.UNDER_REVIEW if review else Status.SUBMITTED
            auto = status == Status.SUBMITTED and self.policy.auto_approve == "clean" and clean
            if auto:
                status = Status.APPROVED
            row = RegistrationRow(
                id=_new_id(), customer_id=customer.id, customer_name=customer.name,
                dealer_id=dealer.id, region_code=dealer.region_code, product_line=product_line,
                status=status, active_key=active_key(customer.id, product_line),
                source=DEALER_SOURCED, client_request_id=request.client_request_id or None,
                submitted_at=now, submitted_by=principal.subject,
                approver_user_id=dealer.managers.get(product_line, ""),
                stage=self.policy.stages[0], department=request.department.strip(),
                evidence=pb.CheckDuplicatesResponse(
                    verdict=VERDICT_TO_PROTO[verdict_of(others)], candidates=evidence,
                    normalized_name=customer.normalized_name,
                    division_code=customer.division_code).SerializeToString(),
                updated_at=now)
            if auto:
                row.decided_at = row.approved_at = now
                row.decided_by = "system"
                row.decision_note = "auto-approved: inside territory, no duplicate or claim"
                row.protected_until = self.policy.protected_until(now)
            session.add(row)
            await session.flush()
            if request.note.strip():
                session.add(NoteRow(id=_new_id(), registration_id=row.id,
                                    text=request.note.strip(), stage=row.stage,
                                    created_at=now, created_by=principal.subject))
            if review:
                await self._open_conflict(session, row, others, product_line)
            await self._event(session, "registration", "submitted",
                              events_pb2.RegistrationSubmitted(
                                  registration=registration_to_proto(row)), row.id)
            if auto:
                await self._event(session, "registration", "approved",
                                  events_pb2.RegistrationApproved(
                                      registration=registration_to_proto(row),
                                      auto_approved=True), row.id)
                await self._notify(session, row.dealer_id, "registration.approved",
                                   f"报备 {row.customer_name}（{product_line}）已自动通过",
                                   registration_id=row.id)
        self._after_commit_index(new_rows)
        return pb.SubmitRegistrationResponse(registration=registration_to_proto(row, viewer),
                                             auto_approved=auto)

    async def _open_conflict(self, session, row: RegistrationRow, others: list[Match],
                             product_line: str) -> ConflictRow:
        """Raise (or join) the HQ review of a registration: its look-alikes' claims."""
        now = _now()
        key = active_key(row.customer_id, product_line)
        conflict = (await session.scalars(select(ConflictRow).where(
            ConflictRow.open_key == key))).first()
        if conflict is None:
            conflict = ConflictRow(id=_new_id(), customer_id=row.customer_id,
                                   product_line=product_line, status="open", open_key=key,
                                   raised_at=now)
            session.add(conflict)
            await session.flush()
        row.conflict_id = conflict.id
        claim_ids = [m.customer_id for m in others]
        dealers = {row.dealer_id}
        if claim_ids:
            for other in (await session.scalars(select(RegistrationRow).where(
                    RegistrationRow.customer_id.in_([*claim_ids, row.customer_id]),
                    RegistrationRow.product_line == product_line,
                    RegistrationRow.active_key.is_not(None),
                    RegistrationRow.id != row.id))).all():
                other.conflict_id = conflict.id
                dealers.add(other.dealer_id)
        await session.flush()
        await self._event(session, "conflict", "raised", events_pb2.ConflictRaised(
            conflict=await self._conflict_proto(session, conflict)), conflict.id)
        for dealer_id in sorted(dealers):
            await self._notify(session, dealer_id, "conflict.raised",
                               f"{row.customer_name}（{product_line}）的报备存在冲突，已提交总部裁决",
                               registration_id=row.id, conflict_id=conflict.id)
        return conflict

    async def _lose(self, request, principal: Principal, dealer: DealerView, product_line: str,
                    prepared, viewer: Scope) -> pb.SubmitRegistrationResponse:
        """Another registration holds the slot: record this one with the winner's evidence
        (rejected when the winner is approved, in the HQ conflict queue while pending)."""
        now = _now()
        async with self.db.unit_of_work() as session:
            customer, _, _ = await self._target_customer(session, request, prepared)
            winner = (await session.scalars(select(RegistrationRow).where(
                RegistrationRow.active_key == active_key(customer.id, product_line)))).first()
            if winner is None:
                raise FailedPrecondition("the competing registration changed meanwhile; "
                                         "submit again", reason="RETRY")
            if winner.dealer_id == dealer.id:
                raise AlreadyExists(
                    f"your dealer already holds registration {winner.id} for "
                    f"{customer.name} ({product_line})", reason="ALREADY_REGISTERED",
                    metadata={"registration_id": winner.id, "status": winner.status})
            matches = await self._matches(session, customer.normalized_name,
                                          customer.credit_code, customer.city_code)
            evidence = await self._evidence(session, matches, product_line)
            approved = winner.status == Status.APPROVED
            row = RegistrationRow(
                id=_new_id(), customer_id=customer.id, customer_name=customer.name,
                dealer_id=dealer.id, region_code=dealer.region_code, product_line=product_line,
                status=Status.REJECTED if approved else Status.UNDER_REVIEW, active_key=None,
                source=DEALER_SOURCED, client_request_id=request.client_request_id or None,
                submitted_at=now, submitted_by=principal.subject,
                approver_user_id=dealer.managers.get(product_line, ""),
                stage=self.policy.stages[0], department=request.department.strip(),
                evidence=pb.CheckDuplicatesResponse(
                    verdict=pb.DUPLICATE_VERDICT_DUPLICATE, candidates=evidence,
                    normalized_name=customer.normalized_name,
                    division_code=customer.division_code).SerializeToString(),
                updated_at=now)
            if approved:
                row.decided_at = now
                row.decided_by = "system"
                until = _aware(winner.protected_until)
                row.decision_note = (f"protected by registration {winner.id} until "
                                     f"{until.date().isoformat() if until else '?'} (first come)")
            session.add(row)
            await session.flush()
            await self._event(session, "registration", "submitted",
                              events_pb2.RegistrationSubmitted(
                                  registration=registration_to_proto(row)), row.id)
            if approved:
                await self._event(session, "registration", "rejected",
                                  events_pb2.RegistrationRejected(
                                      registration=registration_to_proto(row),
                                      reason=row.decision_note), row.id)
                await self._notify(session, row.dealer_id, "registration.rejected",
                                   f"{customer.name}（{product_line}）已由其他经销商报备并受保护",
                                   registration_id=row.id)
            else:
                await self._open_conflict(session, row, [Match(customer.id, MatchKind.CREDIT_CODE,
                                                               10000)], product_line)
        return pb.SubmitRegistrationResponse(registration=registration_to_proto(row, viewer))

    async def _load_registration(self, session, registration_id: str, action: str
                                 ) -> RegistrationRow:
        scope = await self._scope(action)
        row = await session.get(RegistrationRow, registration_id)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"registration {registration_id} not found")
        return row

    async def get_registration(self, registration_id: str) -> pb.Registration:
        async with self.db.sessions() as session:
            row = await self._load_registration(session, registration_id, "registration.read")
        return registration_to_proto(row, await self._scope("registration.read"))

    async def _transition(self, registration_id: str, action: str, allowed: frozenset,
                          verb: str, apply, *, roles: tuple[str, ...] = ()) -> RegistrationRow:
        """Move a registration between states with a conditional UPDATE, so two deciders
        (or two replicas) cannot both succeed."""
        principal = current_principal()
        async with self.db.unit_of_work() as session:
            row = await self._load_registration(session, registration_id, action)
            if roles and not principal.has_role(*roles):
                raise PermissionDenied(f"{verb} needs one of the roles {', '.join(roles)}")
            if Status(row.status) not in allowed:
                raise FailedPrecondition(
                    f"registration {row.id} is {row.status}; cannot {verb} it",
                    reason=f"ALREADY_{row.status.upper()}"
                    if row.status in ("approved", "rejected", "recalled", "expired")
                    else "INVALID_STATE", metadata={"status": row.status})
            values = apply(row)
            values["updated_at"] = _now()
            result = await session.execute(
                update(RegistrationRow)
                .where(RegistrationRow.id == row.id, RegistrationRow.status == row.status)
                .values(**values))
            if result.rowcount != 1:
                raise FailedPrecondition(f"registration {row.id} changed meanwhile",
                                         reason="CONCURRENT_CHANGE")
            await session.refresh(row)
            await self._after_transition(session, row, verb)
        return row

    async def _after_transition(self, session, row: RegistrationRow, verb: str) -> None:
        proto = registration_to_proto(row)
        if verb == "approve":
            await self._event(session, "registration", "approved",
                              events_pb2.RegistrationApproved(registration=proto), row.id)
            await self._notify(session, row.dealer_id, "registration.approved",
                               f"报备 {row.customer_name}（{row.product_line}）已通过",
                               registration_id=row.id)
        elif verb == "reject":
            await self._event(session, "registration", "rejected", events_pb2.RegistrationRejected(
                registration=proto, reason=row.decision_note), row.id)
            await self._notify(session, row.dealer_id, "registration.rejected",
                               f"报备 {row.customer_name}（{row.product_line}）被驳回："
                               f"{row.decision_note}", registration_id=row.id)
        elif verb == "recall":
            await self._event(session, "registration", "recalled",
                              events_pb2.RegistrationRecalled(registration=proto), row.id)

    async def approve(self, registration_id: str, comment: str) -> pb.Registration:
        now = _now()
        subject = current_principal().subject

        def apply(row):
            if row.status == Status.UNDER_REVIEW and not current_principal().has_role(
                    *HQ_DECIDERS):
                raise FailedPrecondition("this registration is under HQ review (conflict "
                                         f"{row.conflict_id}); HQ decides it",
                                         reason="UNDER_REVIEW")
            return dict(status=Status.APPROVED, decided_at=now, approved_at=now,
                        decided_by=subject, decision_note=comment.strip(),
                        protected_until=self.policy.protected_until(now))

        row = await self._transition(registration_id, "registration.approve", PENDING,
                                     "approve", apply, roles=APPROVERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def reject(self, registration_id: str, reason: str) -> pb.Registration:
        if not reason.strip():
            raise InvalidArgument.field("reason", "is required when rejecting")
        now = _now()
        subject = current_principal().subject
        row = await self._transition(
            registration_id, "registration.approve", PENDING, "reject",
            lambda row: dict(status=Status.REJECTED, active_key=None, decided_at=now,
                             decided_by=subject, decision_note=reason.strip()),
            roles=APPROVERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def recall(self, registration_id: str, reason: str) -> pb.Registration:
        now = _now()
        subject = current_principal().subject
        row = await self._transition(
            registration_id, "registration.submit", PENDING, "recall",
            lambda row: dict(status=Status.RECALLED, active_key=None, decided_at=now,
                             decided_by=subject, decision_note=reason.strip()),
            roles=RECALLERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def renew(self, registration_id: str, reason: str) -> tuple[pb.Registration, datetime]:
        async with self.db.unit_of_work() as session:
            row = await self._load_registration(session, registration_id,
                                                "registration.approve")
            if not current_principal().has_role(*APPROVERS):
                raise PermissionDenied("channel managers and HQ renew protection; dealers "
                                       "renew by moving the pipeline forward")
            previous = await self._renew(session, row, reason)
        return registration_to_proto(row, await self._scope("registration.read")), previous

    async def _renew(self, session, row: RegistrationRow, reason: str) -> datetime:
        if row.status != Status.APPROVED:
            raise FailedPrecondition(f"registration {row.id} is {row.status}; only approved "
                                     "registrations are renewed", reason="INVALID_STATE")
        previous = _aware(row.protected_until)
        until = self.policy.renewed_until(previous, _now())
        result = await session.execute(
            update(RegistrationRow)
            .where(RegistrationRow.id == row.id, RegistrationRow.status == Status.APPROVED)
            .values(protected_until=until, renewal_count=RegistrationRow.renewal_count + 1,
                    updated_at=_now()))
        if result.rowcount != 1:
            raise FailedPrecondition(f"registration {row.id} changed meanwhile",
                                     reason="CONCURRENT_CHANGE")
        await session.refresh(row)
        event = events_pb2.RegistrationRenewed(registration=registration_to_proto(row))
        _set_ts(event.previous_protected_until, previous)
        await self._event(session, "registration", "renewed", event, row.id)
        return previous

    def _registration_query(self, scope: Scope, request):
        query = select(RegistrationRow)
        if request.dealer_id:
            query = query.where(RegistrationRow.dealer_id == request.dealer_id)
        if not scope.all_dealers:
            query = query.where(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        return query

    async def list_registrations(self, request: pb.ListRegistrationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        offset = decode_page_token(token)
        query = self._registration_query(scope, request)
        if request.customer_id:
            query = query.where(RegistrationRow.customer_id == request.customer_id)
        if request.product_line:
            query = query.where(RegistrationRow.product_line == request.product_line)
        if request.statuses:
            query = query.where(RegistrationRow.status.in_(
                [PROTO_TO_STATUS[s] for s in request.statuses if s in PROTO_TO_STATUS]))
        if request.region_code:
            query = query.where(RegistrationRow.region_code == request.region_code)
        if request.approver_user_id:
            query = query.where(RegistrationRow.approver_user_id == request.approver_user_id)
        if request.stage:
            query = query.where(RegistrationRow.stage == request.stage)
        query = query.order_by(RegistrationRow.submitted_at.desc(), RegistrationRow.id)
        return await self._page(query, offset, size,
                                lambda r: registration_to_proto(r, scope))

    async def _page(self, query, offset: int, size: int, convert):
        async with self.db.sessions() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([convert(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def list_expiring(self, request: pb.ListExpiringRegistrationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        if request.within_days < 0:
            raise InvalidArgument.field("within_days", "must not be negative")
        days = request.within_days or self.policy.expiring_within_days
        horizon = _now() + timedelta(days=days)
        query = (self._registration_query(scope, request)
                 .where(RegistrationRow.status == Status.APPROVED,
                        RegistrationRow.protected_until <= horizon)
                 .order_by(RegistrationRow.protected_until, RegistrationRow.id))
        return await self._page(query, decode_page_token(token), size,
                                lambda r: registration_to_proto(r, scope))

    # ---- conflicts -------------------------------------------------------------------

    async def _conflict_proto(self, session, conflict: ConflictRow) -> pb.Conflict:
        result = pb.Conflict(
            id=conflict.id, customer_id=conflict.customer_id,
            product_line=conflict.product_line,
            status=pb.CONFLICT_STATUS_OPEN if conflict.status == "open"
            else pb.CONFLICT_STATUS_RESOLVED,
            resolved_by=conflict.resolved_by,
            winning_registration_id=conflict.winning_registration_id,
            resolution_note=conflict.resolution_note)
        _set_ts(result.raised_at, conflict.raised_at)
        _set_ts(result.resolved_at, conflict.resolved_at)
        claims = (await session.scalars(select(RegistrationRow).where(
            RegistrationRow.conflict_id == conflict.id).order_by(
            RegistrationRow.submitted_at))).all()
        for claim in claims:
            proto = registration_to_proto(claim)
            result.claims.append(pb.ConflictClaim(registration=proto, evidence=proto.evidence))
        return result

    def _require_hq(self) -> None:
        if not current_principal().has_role(*HQ_DECIDERS):
            raise PermissionDenied("the conflict queue is for HQ (hq_admin, region_manager)")

    async def list_conflicts(self, request: pb.ListConflictsRequest):
        self._require_hq()
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        query = select(ConflictRow).order_by(ConflictRow.raised_at.desc(), ConflictRow.id)
        if request.status:
            query = query.where(ConflictRow.status == (
                "open" if request.status == pb.CONFLICT_STATUS_OPEN else "resolved"))
        if request.product_line:
            query = query.where(ConflictRow.product_line == request.product_line)
        dealer_filter = []
        if request.dealer_id:
            dealer_filter.append(RegistrationRow.dealer_id == request.dealer_id)
        if request.region_code:
            dealer_filter.append(RegistrationRow.region_code == request.region_code)
        if not scope.all_dealers:
            dealer_filter.append(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        if dealer_filter:
            query = query.where(ConflictRow.id.in_(
                select(RegistrationRow.conflict_id).where(and_(*dealer_filter))))
        offset = decode_page_token(token)
        async with self.db.sessions() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
            conflicts = [await self._conflict_proto(session, r) for r in rows[:size]]
        return conflicts, encode_page_token(offset + size) if len(rows) > size else "", total

    async def resolve_conflict(self, conflict_id: str, winner_id: str, note: str) -> pb.Conflict:
        scope = await self._scope("registration.approve")
        now = _now()
        subject = current_principal().subject
        async with self.db.unit_of_work() as session:
            conflict = await session.get(ConflictRow, conflict_id)
            claims = [] if conflict is None else (await session.scalars(select(
                RegistrationRow).where(RegistrationRow.conflict_id == conflict_id))).all()
            if conflict is None or not (scope.all_dealers
                                        or any(scope.allows(c.dealer_id) for c in claims)):
                raise NotFound(f"conflict {conflict_id} not found")
            self._require_hq()
            violations: list[FieldViolation] = []
            if not winner_id:
                violations.append(FieldViolation("winning_registration_id", "is required"))
            if not note.strip():
                violations.append(FieldViolation("note", "is required; both dealers see it"))
            collect(violations)
            if conflict.status != "open":
                raise FailedPrecondition(f"conflict {conflict_id} is already resolved",
                                         reason="ALREADY_RESOLVED")
            winner = next((c for c in claims if c.id == winner_id), None)
            if winner is None:
                raise InvalidArgument.field("winning_registration_id",
                                            f"{winner_id} is not a claim of this conflict")
            result = await session.execute(
                update(ConflictRow).where(ConflictRow.id == conflict_id,
                                          ConflictRow.status == "open")
                .values(status="resolved", open_key=None, resolved_at=now, resolved_by=subject,
                        winning_registration_id=winner_id, resolution_note=note.strip()))
            if result.rowcount != 1:
                raise FailedPrecondition(f"conflict {conflict_id} is already resolved",
                                         reason="ALREADY_RESOLVED")
            changed: list[tuple[RegistrationRow, str]] = []
            for claim in claims:
                if claim.id == winner.id:
                    continue
                same_slot = claim.customer_id == winner.customer_id
                if Status(claim.status) in PENDING or (same_slot and
                                                        claim.status == Status.APPROVED):
                    claim.status = Status.REJECTED
                    claim.active_key = None
                    claim.decided_at = now
                    claim.decided_by = subject
                    claim.decision_note = f"HQ conflict decision: {note.strip()}"
                    claim.updated_at = now
                    changed.append((claim, "reject"))
            await session.flush()
            if winner.status != Status.APPROVED:
                winner.status = Status.APPROVED
                winner.active_key = active_key(winner.customer_id, winner.product_line)
                winner.decided_at = winner.approved_at = now
                winner.decided_by = subject
                winner.decision_note = f"HQ conflict decision: {note.strip()}"
                winner.protected_until = self.policy.protected_until(now)
                winner.updated_at = now
                changed.append((winner, "approve"))
            for claim in claims:
                claim.conflict_id = ""
            await session.flush()
            for claim, verb in changed:
                await self._after_transition(session, claim, verb)
            conflict = await session.get(ConflictRow, conflict_id)
            proto = await self._conflict_proto(session, conflict)
            proto.claims.extend(pb.ConflictClaim(registration=registration_to_proto(c),
                                                 evidence=registration_to_proto(c).evidence)
                                for c in claims)
            await self._event(session, "conflict", "resolved",
                              events_pb2.ConflictResolved(conflict=proto), conflict_id)
            for dealer_id in sorted({c.dealer_id for c in claims}):
                won = dealer_id == winner.dealer_id
                await self._notify(session, dealer_id, "conflict.resolved",
                                   f"总部裁决 {winner.customer_name}（{winner.product_line}）："
                                   f"{'您的报备胜出' if won else '归属其他经销商'}。{note.strip()}",
                                   conflict_id=conflict_id,
                                   registration_id=next(c.id for c in claims
                                                        if c.dealer_id == dealer_id))
        return proto

    # ---- leads -----------------------------------------------------------------------

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
        await self._event(session, "lead", "assigned", events_pb2.LeadAssigned(
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
        async with self.db.unit_of_work() as session:
            lead = await self._insert_lead(session, values)
        return lead_to_proto(lead)

    async def _customer_or_404(self, customer_id: str) -> CustomerRow:
        async with self.db.sessions() as session:
            customer = await session.get(CustomerRow, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer

    async def _insert_lead(self, session, values: dict) -> LeadRow:
        lead = LeadRow(id=_new_id(), status=LeadStatus.POOL, created_at=_now(),
                       created_by=current_principal().subject, **values)
        session.add(lead)
        await session.flush()
        await self._event(session, "lead", "created", events_pb2.LeadCreated(
            lead=lead_to_proto(lead)), lead.id)
        chosen = pick_dealer(await self._lead_candidates(session, lead.division_code,
                                                         lead.product_line, set()))
        if chosen:
            await self._assign(session, lead, chosen, auto=True)
        return lead

    async def import_leads(self, request: pb.ImportLeadsRequest) -> pb.ImportLeadsResponse:
        if not current_principal().has_role(*LEAD_ADMINS):
            raise PermissionDenied("only HQ imports leads")
        header, rows = read_rows(request.content, request.filename, request.format,
                                 request.encoding)
        names = {"customer_name": ("customer_name", "医院名称", "客户名称", "名称"),
                 "address": ("address", "地址"), "division_code": ("division_code", "区划代码"),
                 "product_line": ("product_line", "产品线"), "department": ("department", "科室"),
                 "contact_name": ("contact_name", "联系人"),
                 "contact_phone": ("contact_phone", "电话"), "note": ("note", "备注")}
        mapping = {k: next((h for h in header if h in v), "") for k, v in names.items()}
        errors, prepared = [], []
        for number, row in enumerate(rows, start=2):
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
        async with self.db.unit_of_work() as session:
            for values in prepared:
                lead = await self._insert_lead(session, values)
                assigned += lead.status == LeadStatus.ASSIGNED
        return pb.ImportLeadsResponse(accepted=True, created=len(prepared), assigned=assigned)

    async def assign_lead(self, lead_id: str, dealer_id: str, reason: str) -> pb.Lead:
        if not dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        scope = await self._scope("registration.read")
        async with self.db.sessions() as session:
            lead = await session.get(LeadRow, lead_id)
        if lead is None or (lead.assigned_dealer_id
                            and not scope.allows(lead.assigned_dealer_id)):
            raise NotFound(f"lead {lead_id} not found")
        scope.require(dealer_id, "dealer")
        if not current_principal().has_role(*LEAD_ADMINS):
            raise PermissionDenied("only HQ assigns leads")
        dealer = await self.dealer(dealer_id)
        async with self.db.unit_of_work() as session:
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
        async with self.db.sessions() as session:
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
            async with self.db.unit_of_work() as session:
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
                await self._event(session, "registration", "submitted",
                                  events_pb2.RegistrationSubmitted(
                                      registration=registration_to_proto(row)), row.id)
                await self._event(session, "registration", "approved",
                                  events_pb2.RegistrationApproved(
                                      registration=registration_to_proto(row),
                                      auto_approved=True), row.id)
                await self._event(session, "lead", "claimed", events_pb2.LeadClaimed(
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
        async with self.db.unit_of_work() as session:
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
            await self._event(session, "lead", "returned", events_pb2.LeadReturned(
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

    # ---- pipeline --------------------------------------------------------------------

    async def advance_stage(self, request: pb.AdvanceStageRequest) -> pb.Registration:
        target = request.stage.strip()
        if self.policy.stage_index(target) < 0:
            raise InvalidArgument.field("stage", f"{target!r} is not a stage; stages are "
                                                 f"{', '.join(self.policy.stages)}")
        principal = current_principal()
        async with self.db.unit_of_work() as session:
            row = await self._load_registration(session, request.registration_id,
                                                "registration.submit")
            if not principal.has_role(*PIPELINE):
                raise PermissionDenied("the pipeline is worked by the dealer and its managers")
            if row.status != Status.APPROVED:
                raise FailedPrecondition(f"registration {row.id} is {row.status}; only "
                                         "approved registrations move along the pipeline",
                                         reason="INVALID_STATE")
            current = self.policy.stage_index(row.stage)
            if self.policy.stage_index(target) <= current:
                raise InvalidArgument.field("stage", f"{target} is not after the current stage "
                                                     f"{row.stage}")
            previous_stage = row.stage
            result = await session.execute(
                update(RegistrationRow).where(RegistrationRow.id == row.id,
                                              RegistrationRow.stage == previous_stage)
                .values(stage=target, next_step=request.next_step.strip() or row.next_step,
                        updated_at=_now()))
            if result.rowcount != 1:
                raise FailedPrecondition("the stage changed meanwhile",
                                         reason="CONCURRENT_CHANGE")
            await session.refresh(row)
            if request.note.strip() or request.next_step.strip():
                session.add(NoteRow(id=_new_id(), registration_id=row.id,
                                    text=request.note.strip() or f"→ {target}", stage=target,
                                    next_step=request.next_step.strip(), created_at=_now(),
                                    created_by=principal.subject))
            await self._event(session, "registration_stage", "advanced",
                              events_pb2.RegistrationStageAdvanced(
                                  registration=registration_to_proto(row),
                                  previous_stage=previous_stage), row.id)
            await self._renew(session, row, f"pipeline moved to {target}")
        return registration_to_proto(row, await self._scope("registration.read"))

    async def add_note(self, request: pb.AddNoteRequest) -> pb.Note:
        violations = []
        if not request.text.strip():
            violations.append(FieldViolation("text", "is required"))
        parse_day(request.next_step_due, "next_step_due", violations)
        collect(violations)
        async with self.db.unit_of_work() as session:
            row = await self._load_registration(session, request.registration_id,
                                                "registration.submit")
            if not current_principal().has_role(*PIPELINE):
                raise PermissionDenied("the pipeline is worked by the dealer and its managers")
            note = NoteRow(id=_new_id(), registration_id=row.id, text=request.text.strip(),
                           stage=row.stage, next_step=request.next_step.strip(),
                           next_step_due=request.next_step_due, created_at=_now(),
                           created_by=current_principal().subject)
            session.add(note)
            if request.next_step.strip():
                row.next_step = request.next_step.strip()
                row.updated_at = _now()
            await session.flush()
            await self._event(session, "registration_note", "added",
                              events_pb2.RegistrationNoteAdded(note=note_to_proto(note),
                                                               next_step=row.next_step), row.id)
        return note_to_proto(note)

    async def list_notes(self, request: pb.ListNotesRequest):
        size, token = page_args(request.page)
        async with self.db.sessions() as session:
            await self._load_registration(session, request.registration_id,
                                          "registration.read")
        query = (select(NoteRow).where(NoteRow.registration_id == request.registration_id)
                 .order_by(NoteRow.created_at.desc(), NoteRow.id))
        return await self._page(query, decode_page_token(token), size, note_to_proto)

    async def funnel(self, request: pb.GetFunnelRequest) -> pb.GetFunnelResponse:
        scope = await self._scope("registration.read")
        violations: list[FieldViolation] = []
        start = parse_day(request.approved_from, "approved_from", violations)
        end = parse_day(request.approved_to, "approved_to", violations)
        collect(violations)
        column = {pb.FUNNEL_DIMENSION_REGION: RegistrationRow.region_code,
                  pb.FUNNEL_DIMENSION_DEALER: RegistrationRow.dealer_id,
                  pb.FUNNEL_DIMENSION_PRODUCT_LINE: RegistrationRow.product_line}.get(
            request.group_by)
        if column is None:  # one group: the whole scope
            query = (select(literal_column("''").label("key"), RegistrationRow.stage,
                            func.count()).group_by(RegistrationRow.stage))
        else:
            query = (select(column.label("key"), RegistrationRow.stage, func.count())
                     .group_by(column, RegistrationRow.stage))
        query = query.where(RegistrationRow.status == Status.APPROVED)
        if not scope.all_dealers:
            query = query.where(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        if request.dealer_id:
            query = query.where(RegistrationRow.dealer_id == request.dealer_id)
        if request.region_code:
            query = query.where(RegistrationRow.region_code == request.region_code)
        if request.product_line:
            query = query.where(RegistrationRow.product_line == request.product_line)
        if start:
            query = query.where(RegistrationRow.approved_at >= datetime.combine(
                start, datetime.min.time(), UTC))
        if end:
            query = query.where(RegistrationRow.approved_at < datetime.combine(
                end + timedelta(days=1), datetime.min.time(), UTC))
        async with self.db.sessions() as session:
            rows = (await session.execute(query)).all()
            names = {}
            if request.group_by == pb.FUNNEL_DIMENSION_DEALER:
                names = dict((await session.execute(select(DealerRow.id, DealerRow.name))).all())
        groups: dict[str, dict[str, int]] = {}
        for group_key, stage, count in rows:
            groups.setdefault(group_key or "", {})[stage] = count
        response = pb.GetFunnelResponse(stages=list(self.policy.stages))
        for group_key in sorted(groups):
            counts = groups[group_key]
            response.groups.append(pb.FunnelGroup(
                key=group_key, label=names.get(group_key, group_key or "全部"),
                stages=[pb.FunnelStageCount(stage=s, count=counts.get(s, 0))
                        for s in self.policy.stages]))
        return response

    # ---- authorizations ---------------------------------------------------------------

    async def grant(self, request: pb.GrantAuthorizationRequest) -> pb.Authorization:
        principal = current_principal()
        violations: list[FieldViolation] = []
        if request.dealer_id:
            (await self._scope("registration.approve")).require(request.dealer_id, "dealer")
        if not principal.has_role(*GRANTERS):
            raise PermissionDenied("channel managers and HQ admins grant authorizations")
        if not request.dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        if bool(request.product_line.strip()) == bool(request.product_code.strip()):
            violations.append(FieldViolation("product_line",
                                             "give exactly one of product_line and product_code"))
        if not request.customer_id:
            violations.append(FieldViolation("customer_id", "is required"))
        start = parse_day(request.valid_from, "valid_from", violations)
        end = parse_day(request.valid_to, "valid_to", violations)
        if not request.valid_from:
            violations.append(FieldViolation("valid_from", "is required"))
        if not request.valid_to:
            violations.append(FieldViolation("valid_to", "is required"))
        if start and end and end < start:
            violations.append(FieldViolation("valid_to", "must not be before valid_from"))
        today = _now().date()
        if end and end < today:
            violations.append(FieldViolation("valid_to", "is in the past"))
        collect(violations)
        scope = await self._scope("registration.approve")
        scope.require(request.dealer_id, "dealer")
        dealer = await self.dealer(request.dealer_id)
        if request.product_line and request.product_line.strip() not in dealer.product_lines:
            raise InvalidArgument.field("product_line", f"dealer {dealer.name} does not carry "
                                                        f"{request.product_line!r}")
        customer = await self._customer_or_404(request.customer_id)
        department = request.department.strip()
        if department and customer.departments and department not in customer.departments:
            raise InvalidArgument.field("department", f"{customer.name} has no department "
                                                      f"{department!r}")
        now = _now()
        grant_id = _new_id()
        async with self.db.unit_of_work() as session:
            row = AuthorizationRow(
                id=grant_id, dealer_id=dealer.id, product_line=request.product_line.strip(),
                product_code=request.product_code.strip(), customer_id=customer.id,
                customer_name=customer.name, department=department,
                valid_from=start.isoformat(), valid_to=end.isoformat(),
                owner_user_id=request.owner_user_id or principal.user_id,
                status=AuthStatus.PENDING if start > today else AuthStatus.ACTIVE,
                granted_at=now, granted_by=principal.subject,
                letter_no=f"SQ-{today.year}-{grant_id[:8].upper()}")
            session.add(row)
            await session.flush()
            await self._event(session, "authorization", "granted",
                              events_pb2.AuthorizationGranted(
                                  authorization=authorization_to_proto(row)), row.id)
        return authorization_to_proto(row)

    async def revoke(self, grant_id: str, reason: str) -> pb.Authorization:
        principal = current_principal()
        scope = await self._scope("registration.approve")
        now = _now()
        async with self.db.unit_of_work() as session:
            row = await session.get(AuthorizationRow, grant_id)
            if row is None or not scope.allows(row.dealer_id):
                raise NotFound(f"authorization {grant_id} not found")
            if not principal.has_role(*GRANTERS):
                raise PermissionDenied("channel managers and HQ admins revoke authorizations")
            if not reason.strip():
                raise InvalidArgument.field("reason", "is required when revoking")
            result = await session.execute(
                update(AuthorizationRow).where(
                    AuthorizationRow.id == grant_id,
                    AuthorizationRow.status.in_([AuthStatus.PENDING, AuthStatus.ACTIVE]))
                .values(status=AuthStatus.REVOKED, revoked_at=now, revoked_by=principal.subject,
                        revoke_reason=reason.strip()))
            if result.rowcount != 1:
                raise FailedPrecondition(f"authorization {grant_id} is {row.status}",
                                         reason=f"ALREADY_{row.status.upper()}")
            await session.refresh(row)
            await self._event(session, "authorization", "revoked",
                              events_pb2.AuthorizationRevoked(
                                  authorization=authorization_to_proto(row),
                                  reason=reason.strip()), row.id)
        return authorization_to_proto(row)

    async def list_authorizations(self, request: pb.ListAuthorizationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        violations: list[FieldViolation] = []
        valid_on = parse_day(request.valid_on, "valid_on", violations)
        collect(violations)
        query = select(AuthorizationRow).order_by(AuthorizationRow.granted_at.desc(),
                                                  AuthorizationRow.id)
        if not scope.all_dealers:
            query = query.where(AuthorizationRow.dealer_id.in_(scope.dealer_ids))
        if request.dealer_id:
            query = query.where(AuthorizationRow.dealer_id == request.dealer_id)
        if request.customer_id:
            query = query.where(AuthorizationRow.customer_id == request.customer_id)
        if request.product_line:
            query = query.where(AuthorizationRow.product_line == request.product_line)
        if request.owner_user_id:
            query = query.where(AuthorizationRow.owner_user_id == request.owner_user_id)
        if request.statuses:
            query = query.where(AuthorizationRow.status.in_(
                [PROTO_TO_AUTH[s] for s in request.statuses if s in PROTO_TO_AUTH]))
        if valid_on:
            day = valid_on.isoformat()
            query = query.where(AuthorizationRow.valid_from <= day,
                                AuthorizationRow.valid_to >= day)
        return await self._page(query, decode_page_token(token), size, authorization_to_proto)

    async def export_letter(self, grant_id: str, export_format: int):
        scope = await self._scope("registration.read")
        async with self.db.sessions() as session:
            row = await session.get(AuthorizationRow, grant_id)
            dealer = await session.get(DealerRow, row.dealer_id) if row else None
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"authorization {grant_id} not found")
        if row.status not in (AuthStatus.ACTIVE, AuthStatus.PENDING):
            raise FailedPrecondition(f"authorization {grant_id} is {row.status}; no letter",
                                     reason="NOT_VALID")
        letter = Letter(letter_no=row.letter_no,
                        dealer_name=dealer.name if dealer else row.dealer_id,
                        customer_name=row.customer_name,
                        scope=row.product_line or f"产品 {row.product_code}",
                        department=row.department, valid_from=row.valid_from,
                        valid_to=row.valid_to, owner=row.owner_user_id,
                        issued_on=_now().date().isoformat())
        if export_format == files_pb2.EXPORT_FORMAT_XLSX:
            return files_pb2.ExportedFile(
                filename=f"授权书-{row.letter_no}.xlsx", content=to_xlsx(letter),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if export_format not in (files_pb2.EXPORT_FORMAT_UNSPECIFIED, files_pb2.EXPORT_FORMAT_PDF):
            raise InvalidArgument.field("format", "PDF or XLSX")
        return files_pb2.ExportedFile(filename=f"授权书-{row.letter_no}.pdf",
                                      content_type="application/pdf", content=to_pdf(letter))

    # ---- scheduler -------------------------------------------------------------------

    async def run_scheduler_once(self) -> dict[str, int]:
        """Expire protections and authorizations, return overdue leads to the pool. Every
        change is a conditional UPDATE, so two replicas running this at once never apply
        one change twice."""
        now = _now()
        counts = {"registrations": 0, "leads": 0, "authorizations": 0}
        async with self.db.sessions() as session:
            due = (await session.scalars(select(RegistrationRow.id).where(
                RegistrationRow.status == Status.APPROVED,
                RegistrationRow.protected_until < now).limit(500))).all()
        for registration_id in due:
            async with self.db.unit_of_work() as session:
                result = await session.execute(
                    update(RegistrationRow).where(RegistrationRow.id == registration_id,
                                                  RegistrationRow.status == Status.APPROVED,
                                                  RegistrationRow.protected_until < now)
                    .execution_options(synchronize_session=False)
                    .values(status=Status.EXPIRED, active_key=None, decided_by="system",
                            updated_at=now))
                if result.rowcount == 1:
                    row = await session.get(RegistrationRow, registration_id)
                    await self._event(session, "registration", "expired",
                                      events_pb2.RegistrationExpired(
                                          registration=registration_to_proto(row)), row.id)
                    await self._notify(session, row.dealer_id, "registration.expired",
                                       f"{row.customer_name}（{row.product_line}）的保护期已到期，"
                                       "客户已释放", registration_id=row.id)
                    counts["registrations"] += 1
        async with self.db.sessions() as session:
            overdue = (await session.scalars(select(LeadRow.id).where(
                LeadRow.status == LeadStatus.ASSIGNED, LeadRow.claim_deadline < now)
                .limit(500))).all()
        for lead_id in overdue:
            async with self.db.unit_of_work() as session:
                lead = await session.get(LeadRow, lead_id)
                previous = lead.assigned_dealer_id
                result = await session.execute(
                    update(LeadRow).where(LeadRow.id == lead_id,
                                          LeadRow.status == LeadStatus.ASSIGNED,
                                          LeadRow.claim_deadline < now)
                    .execution_options(synchronize_session=False)
                    .values(status=LeadStatus.POOL, assigned_dealer_id="", assigned_at=None,
                            claim_deadline=None, return_count=LeadRow.return_count + 1))
                if result.rowcount == 1:
                    await session.refresh(lead)
                    await self._event(session, "lead", "returned", events_pb2.LeadReturned(
                        lead=lead_to_proto(lead), previous_dealer_id=previous,
                        deadline_passed=True, reason="claim deadline passed"), lead.id)
                    counts["leads"] += 1
        today = now.date().isoformat()
        async with self.db.unit_of_work() as session:
            await session.execute(update(AuthorizationRow).where(
                AuthorizationRow.status == AuthStatus.PENDING,
                AuthorizationRow.valid_from <= today).values(status=AuthStatus.ACTIVE))
        async with self.db.sessions() as session:
            lapsed = (await session.scalars(select(AuthorizationRow.id).where(
                AuthorizationRow.status.in_([AuthStatus.ACTIVE, AuthStatus.PENDING]),
                AuthorizationRow.valid_to < today).limit(500))).all()
        for grant_id in lapsed:
            async with self.db.unit_of_work() as session:
                result = await session.execute(
                    update(AuthorizationRow).where(
                        AuthorizationRow.id == grant_id,
                        AuthorizationRow.status.in_([AuthStatus.ACTIVE, AuthStatus.PENDING]),
                        AuthorizationRow.valid_to < today)
                    .values(status=AuthStatus.EXPIRED))
                if result.rowcount == 1:
                    row = await session.get(AuthorizationRow, grant_id)
                    await self._event(session, "authorization", "expired",
                                      events_pb2.AuthorizationExpired(
                                          authorization=authorization_to_proto(row)), row.id)
                    counts["authorizations"] += 1
        return counts

    async def run_scheduler(self) -> None:
        while True:
            try:
                counts = await self.run_scheduler_once()
                if any(counts.values()):
                    log.info("scheduler_pass", **counts)
            except Exception as exc:  # the database is busy or gone: try next round
                log.warning("scheduler_failed", error=repr(exc))
            await asyncio.sleep(self.policy.scheduler_interval_seconds)

    async def run_index_refresher(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.index.refresh(self.db)
            except Exception as exc:
                log.warning("name_index_refresh_failed", error=repr(exc))


def _row_error(number: int, column: str, violation: FieldViolation, value: str):
    field_name = violation.field.split(".", 1)[-1]
    code = {"name": "INVALID_NAME", "credit_code": "INVALID_CREDIT_CODE",
            "division_code": "UNKNOWN_DIVISION", "customer_name": "INVALID_NAME",
            "product_line": "MISSING_PRODUCT_LINE"}.get(field_name.split("[")[0],
                                                        "INVALID_VALUE")
    return files_pb2.RowError(row_number=number, column=column, code=code,
                              message_zh=f"{column or field_name}：{violation.description}",
                              message_en=f"{field_name}: {violation.description}", value=value)

