"""What the registration use cases share: the base holding their collaborators (the
database and its read-only sessions, the outbox, the scope resolver, identity, the name
index, the policy), the role lists, the small helpers and the row → message converters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from qudao.common.v1 import customer_source_pb2, files_pb2
from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import func, select

from services.registration.adapters.name_index import put_row
from services.registration.adapters.orm import (
    AuthorizationRow,
    CustomerRow,
    LeadRow,
    RegistrationRow,
)
from services.registration.domain.rules import AuthStatus, LeadStatus, Policy, Status
from shared.bus.outbox import Outbox
from shared.context import current_principal
from shared.db import Database
from shared.errors import FieldViolation
from shared.events import EventType
from shared.events.registration import (
    DEALER_NOTIFIED,
    REGISTRATION_APPROVED,
    REGISTRATION_RECALLED,
    REGISTRATION_REJECTED,
)
from shared.names.index import NameIndex
from shared.names.matching import MatchKind, Verdict
from shared.pagination import encode_page_token, page_size
from shared.scope import Scope
from shared.scope_client import ScopeResolver

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


class UseCaseBase:
    def __init__(self, db: Database, outbox: Outbox, scopes: ScopeResolver, identity,
                 index: NameIndex, policy: Policy
                 ) -> None:
        self.db = db
        # Sessions for read-only queries on the hot path (the duplicate check). On SQLite
        # the shared Database opens every transaction with BEGIN IMMEDIATE, taking the
        # write lock even to read; these read in WAL mode without it.
        self.outbox = outbox
        self.scopes = scopes
        self.identity = identity
        self.index = index
        self.policy = policy

    async def _scope(self, action: str) -> Scope:
        return await self.scopes.resolve(current_principal(), action)

    async def _event(self, session, event: EventType, payload, aggregate_id: str) -> None:
        await self.outbox.record(session, event, payload, aggregate_id)

    async def _notify(self, session, dealer_id: str, kind: str, message: str, *,
                      registration_id: str = "", conflict_id: str = "", lead_id: str = "") -> None:
        if not dealer_id:
            return
        await self._event(session, DEALER_NOTIFIED, events_pb2.DealerNotified(
            dealer_id=dealer_id, kind=kind, registration_id=registration_id,
            conflict_id=conflict_id, lead_id=lead_id, message=message), dealer_id)

    def _after_commit_index(self, rows: list[CustomerRow]) -> None:
        for row in rows:
            put_row(self.index, row)

    async def _page(self, query, offset: int, size: int, convert):
        async with self.db.read() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([convert(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def _after_transition(self, session, row: RegistrationRow, verb: str) -> None:
        """The events and the dealer's notice after a registration was decided or
        recalled, by a manager or by HQ resolving a conflict."""
        proto = registration_to_proto(row)
        if verb == "approve":
            await self._event(session, REGISTRATION_APPROVED,
                              events_pb2.RegistrationApproved(registration=proto), row.id)
            await self._notify(session, row.dealer_id, "registration.approved",
                               f"报备 {row.customer_name}（{row.product_line}）已通过",
                               registration_id=row.id)
        elif verb == "reject":
            await self._event(session, REGISTRATION_REJECTED, events_pb2.RegistrationRejected(
                registration=proto, reason=row.decision_note), row.id)
            await self._notify(session, row.dealer_id, "registration.rejected",
                               f"报备 {row.customer_name}（{row.product_line}）被驳回："
                               f"{row.decision_note}", registration_id=row.id)
        elif verb == "recall":
            await self._event(session, REGISTRATION_RECALLED,
                              events_pb2.RegistrationRecalled(registration=proto), row.id)


def _row_error(number: int, column: str, violation: FieldViolation, value: str):
    field_name = violation.field.split(".", 1)[-1]
    code = {"name": "INVALID_NAME", "credit_code": "INVALID_CREDIT_CODE",
            "division_code": "UNKNOWN_DIVISION", "customer_name": "INVALID_NAME",
            "product_line": "MISSING_PRODUCT_LINE"}.get(field_name.split("[")[0],
                                                        "INVALID_VALUE")
    return files_pb2.RowError(row_number=number, column=column, code=code,
                              message_zh=f"{column or field_name}：{violation.description}",
                              message_en=f"{field_name}: {violation.description}", value=value)
