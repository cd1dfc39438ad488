"""The registration service's domain objects as protobuf messages: its responses (api/),
the payloads of the events its use cases record, the evidence a registration keeps, and
back from the messages that carry domain values in (requests, identity's org units)."""

from __future__ import annotations

from qudao.common.v1 import customer_source_pb2, files_pb2
from qudao.identity.v1 import identity_pb2
from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb

from services.registration.domain.authorizations import (
    Authorization,
    ExportedFile,
    ExportFormat,
)
from services.registration.domain.customers import (
    Candidate,
    Claim,
    Customer,
    CustomerInput,
    DuplicateCheck,
)
from services.registration.domain.dealers import Assignment, AssignmentChange, DealerFacts
from services.registration.domain.imports import ImportReport, RowError
from services.registration.domain.leads import Lead
from services.registration.domain.registrations import (
    ConflictStatus,
    ConflictView,
    Funnel,
    FunnelDimension,
    Note,
    Notice,
    Registration,
    Source,
)
from services.registration.domain.rules import AuthStatus, LeadStatus, Status
from shared.convert import from_timestamp, to_timestamp
from shared.names.address import address_key
from shared.names.matching import MatchKind, Reason, Verdict

STATUS_TO_PROTO = {s: pb.RegistrationStatus.Value(f"REGISTRATION_STATUS_{s.name}")
                   for s in Status}
PROTO_TO_STATUS = {v: k for k, v in STATUS_TO_PROTO.items()}
LEAD_TO_PROTO = {s: pb.LeadStatus.Value(f"LEAD_STATUS_{s.name}") for s in LeadStatus}
PROTO_TO_LEAD = {v: k for k, v in LEAD_TO_PROTO.items()}
AUTH_TO_PROTO = {s: pb.AuthorizationStatus.Value(f"AUTHORIZATION_STATUS_{s.name}")
                 for s in AuthStatus}
PROTO_TO_AUTH = {v: k for k, v in AUTH_TO_PROTO.items()}
KIND_TO_PROTO = {k: pb.MatchKind.Value(f"MATCH_KIND_{k.name}") for k in MatchKind}
PROTO_TO_KIND = {v: k for k, v in KIND_TO_PROTO.items()}
REASON_TO_PROTO = {r: pb.MatchReason.Value(f"MATCH_REASON_{r.name}") for r in Reason}
PROTO_TO_REASON = {v: k for k, v in REASON_TO_PROTO.items()}
VERDICT_TO_PROTO = {v: pb.DuplicateVerdict.Value(f"DUPLICATE_VERDICT_{v.name}")
                    for v in Verdict}
PROTO_TO_VERDICT = {v: k for k, v in VERDICT_TO_PROTO.items()}
SOURCE_TO_PROTO = {s: customer_source_pb2.CustomerSource.Value(f"CUSTOMER_SOURCE_{s.name}")
                   for s in Source}
CONFLICT_TO_PROTO = {ConflictStatus.OPEN: pb.CONFLICT_STATUS_OPEN,
                     ConflictStatus.RESOLVED: pb.CONFLICT_STATUS_RESOLVED}
PROTO_TO_CONFLICT = {v: k for k, v in CONFLICT_TO_PROTO.items()}
PROTO_TO_DIMENSION = {pb.FUNNEL_DIMENSION_REGION: FunnelDimension.REGION,
                      pb.FUNNEL_DIMENSION_DEALER: FunnelDimension.DEALER,
                      pb.FUNNEL_DIMENSION_PRODUCT_LINE: FunnelDimension.PRODUCT_LINE}
PROTO_TO_EXPORT = {files_pb2.EXPORT_FORMAT_UNSPECIFIED: ExportFormat.DEFAULT,
                   files_pb2.EXPORT_FORMAT_XLSX: ExportFormat.XLSX,
                   files_pb2.EXPORT_FORMAT_CSV: ExportFormat.CSV,
                   files_pb2.EXPORT_FORMAT_PDF: ExportFormat.PDF}


# customers and the duplicate check

def customer_to_proto(customer: Customer) -> pb.Customer:
    return pb.Customer(
        id=customer.id, name=customer.name, normalized_name=customer.normalized_name,
        aliases=list(customer.aliases), credit_code=customer.credit_code or "",
        address=customer.address, division_code=customer.division_code,
        division_code_overridden=customer.division_overridden, city_code=customer.city_code,
        customer_type=customer.customer_type, grade=customer.grade,
        departments=list(customer.departments), created_by=customer.created_by,
        created_at=to_timestamp(customer.created_at),
        updated_at=to_timestamp(customer.updated_at), version=customer.version)


def customer_from_proto(message: pb.Customer) -> Customer:
    return Customer(
        id=message.id, name=message.name, normalized_name=message.normalized_name,
        aliases=tuple(message.aliases), credit_code=message.credit_code or None,
        address=message.address, division_code=message.division_code,
        division_overridden=message.division_code_overridden, city_code=message.city_code,
        customer_type=message.customer_type, grade=message.grade,
        departments=tuple(message.departments), created_by=message.created_by,
        address_key=address_key(message.address, message.division_code),
        created_at=from_timestamp(message.created_at),
        updated_at=from_timestamp(message.updated_at), version=message.version or 1)


def customer_input_from_proto(message: pb.CustomerInput | pb.Customer) -> CustomerInput:
    return CustomerInput(
        name=message.name, aliases=tuple(message.aliases), credit_code=message.credit_code,
        address=message.address, division_code=message.division_code,
        customer_type=message.customer_type, grade=message.grade,
        departments=tuple(message.departments))


def _claim_to_proto(claim: Claim) -> pb.ClaimSummary:
    return pb.ClaimSummary(
        registration_id=claim.registration_id, dealer_id=claim.dealer_id,
        product_line=claim.product_line, status=STATUS_TO_PROTO[claim.status],
        submitted_at=to_timestamp(claim.submitted_at),
        protected_until=to_timestamp(claim.protected_until))


def candidate_to_proto(candidate: Candidate) -> pb.DuplicateCandidate:
    return pb.DuplicateCandidate(
        customer=customer_to_proto(candidate.customer),
        match_kind=KIND_TO_PROTO[candidate.kind], score_bps=candidate.score_bps,
        claims=[_claim_to_proto(c) for c in candidate.claims],
        reasons=[REASON_TO_PROTO[r] for r in candidate.reasons])


def duplicate_check_to_proto(check: DuplicateCheck) -> pb.CheckDuplicatesResponse:
    return pb.CheckDuplicatesResponse(
        verdict=VERDICT_TO_PROTO[check.verdict],
        candidates=[candidate_to_proto(c) for c in check.candidates],
        normalized_name=check.normalized_name, division_code=check.division_code)


def duplicate_check_from_proto(message: pb.CheckDuplicatesResponse) -> DuplicateCheck:
    return DuplicateCheck(
        verdict=PROTO_TO_VERDICT.get(message.verdict, Verdict.NONE),
        candidates=tuple(Candidate(
            customer=customer_from_proto(c.customer), kind=PROTO_TO_KIND[c.match_kind],
            score_bps=c.score_bps,
            claims=tuple(Claim(
                registration_id=claim.registration_id, dealer_id=claim.dealer_id,
                product_line=claim.product_line, status=PROTO_TO_STATUS[claim.status],
                submitted_at=from_timestamp(claim.submitted_at),
                protected_until=from_timestamp(claim.protected_until))
                for claim in c.claims),
            reasons=tuple(PROTO_TO_REASON[r] for r in c.reasons if r in PROTO_TO_REASON))
            for c in message.candidates),
        normalized_name=message.normalized_name, division_code=message.division_code)


def encode_evidence(check: DuplicateCheck | None) -> bytes:
    """A registration's evidence as the registrations table keeps it."""
    return duplicate_check_to_proto(check).SerializeToString() if check else b""


def decode_evidence(data: bytes | None) -> DuplicateCheck | None:
    if not data:
        return None
    return duplicate_check_from_proto(pb.CheckDuplicatesResponse.FromString(data))


def customers_imported(report: ImportReport) -> pb.ImportCustomersResponse:
    return pb.ImportCustomersResponse(accepted=report.accepted, created=report.created,
                                      errors=[row_error_to_proto(e) for e in report.errors])


def aliases_imported(report: ImportReport) -> pb.ImportAliasesResponse:
    return pb.ImportAliasesResponse(accepted=report.accepted, added=report.created,
                                    errors=[row_error_to_proto(e) for e in report.errors])


def leads_imported(report: ImportReport) -> pb.ImportLeadsResponse:
    return pb.ImportLeadsResponse(accepted=report.accepted, created=report.created,
                                  assigned=report.assigned,
                                  errors=[row_error_to_proto(e) for e in report.errors])


def row_error_to_proto(error: RowError) -> files_pb2.RowError:
    return files_pb2.RowError(row_number=error.row_number, column=error.column,
                              code=error.code, message_zh=error.message_zh,
                              message_en=error.message_en, value=error.value)


# registrations, conflicts, the pipeline

def registration_to_proto(registration: Registration) -> pb.Registration:
    r = registration
    return pb.Registration(
        id=r.id, customer_id=r.customer_id, customer_name=r.customer_name,
        dealer_id=r.dealer_id, product_line=r.product_line, status=STATUS_TO_PROTO[r.status],
        source=SOURCE_TO_PROTO[r.source], lead_id=r.lead_id, submitted_by=r.submitted_by,
        approver_user_id=r.approver_user_id, decided_by=r.decided_by,
        decision_note=r.decision_note, renewal_count=r.renewal_count, stage=r.stage,
        next_step=r.next_step, conflict_id=r.conflict_id, department=r.department,
        submitted_at=to_timestamp(r.submitted_at), decided_at=to_timestamp(r.decided_at),
        protected_until=to_timestamp(r.protected_until),
        updated_at=to_timestamp(r.updated_at),
        evidence=[candidate_to_proto(c) for c in r.evidence.candidates] if r.evidence else [])


def conflict_to_proto(view: ConflictView) -> pb.Conflict:
    conflict = view.conflict
    claims = []
    for registration in view.claims:
        message = registration_to_proto(registration)
        claims.append(pb.ConflictClaim(registration=message, evidence=message.evidence))
    return pb.Conflict(
        id=conflict.id, customer_id=conflict.customer_id, product_line=conflict.product_line,
        status=CONFLICT_TO_PROTO[conflict.status], resolved_by=conflict.resolved_by,
        winning_registration_id=conflict.winning_registration_id,
        resolution_note=conflict.resolution_note, claims=claims,
        raised_at=to_timestamp(conflict.raised_at),
        resolved_at=to_timestamp(conflict.resolved_at))


def note_to_proto(note: Note) -> pb.Note:
    return pb.Note(id=note.id, registration_id=note.registration_id, text=note.text,
                   stage=note.stage, next_step=note.next_step,
                   next_step_due=note.next_step_due, created_by=note.created_by,
                   created_at=to_timestamp(note.created_at))


def funnel_to_proto(funnel: Funnel) -> pb.GetFunnelResponse:
    return pb.GetFunnelResponse(stages=list(funnel.stages), groups=[
        pb.FunnelGroup(key=group.key, label=group.label,
                       stages=[pb.FunnelStageCount(stage=stage, count=count)
                               for stage, count in group.counts])
        for group in funnel.groups])


# leads and authorizations

def lead_to_proto(lead: Lead) -> pb.Lead:
    return pb.Lead(
        id=lead.id, customer_id=lead.customer_id, customer_name=lead.customer_name,
        address=lead.address, division_code=lead.division_code,
        product_line=lead.product_line, department=lead.department,
        contact_name=lead.contact_name, contact_phone=lead.contact_phone, note=lead.note,
        status=LEAD_TO_PROTO[lead.status], assigned_dealer_id=lead.assigned_dealer_id,
        claimed_by=lead.claimed_by, registration_id=lead.registration_id,
        return_count=lead.return_count, created_by=lead.created_by,
        assigned_at=to_timestamp(lead.assigned_at),
        claim_deadline=to_timestamp(lead.claim_deadline),
        claimed_at=to_timestamp(lead.claimed_at), created_at=to_timestamp(lead.created_at))


def authorization_to_proto(grant: Authorization) -> pb.Authorization:
    return pb.Authorization(
        id=grant.id, dealer_id=grant.dealer_id, product_line=grant.product_line,
        product_code=grant.product_code, customer_id=grant.customer_id,
        customer_name=grant.customer_name, department=grant.department,
        valid_from=grant.valid_from, valid_to=grant.valid_to,
        owner_user_id=grant.owner_user_id, status=AUTH_TO_PROTO[grant.status],
        granted_by=grant.granted_by, revoked_by=grant.revoked_by,
        revoke_reason=grant.revoke_reason, letter_no=grant.letter_no,
        granted_at=to_timestamp(grant.granted_at), revoked_at=to_timestamp(grant.revoked_at))


def exported_file_to_proto(file: ExportedFile) -> files_pb2.ExportedFile:
    return files_pb2.ExportedFile(filename=file.filename, content_type=file.content_type,
                                  content=file.content)


# identity's messages, as registration keeps them

def dealer_facts(unit: identity_pb2.OrgUnit) -> DealerFacts | None:
    """The dealer an org unit describes; None for any other kind of unit."""
    if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
        return None
    return DealerFacts(
        id=unit.id, name=unit.name, tier=unit.tier, region_code=unit.region_code,
        division_codes=tuple(unit.division_codes), product_lines=tuple(unit.product_lines),
        active=unit.status in (identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED,
                               identity_pb2.ORG_UNIT_STATUS_ACTIVE))


def assignment_change(change) -> AssignmentChange:
    """identity's AssignmentChanged payload."""
    def assignments(items) -> tuple[Assignment, ...]:
        return tuple(Assignment(a.manager_user_id, a.dealer_id, a.product_line)
                     for a in items)

    return AssignmentChange(added=assignments(change.added),
                            removed=assignments(change.removed),
                            from_manager_user_id=change.from_manager_user_id,
                            to_manager_user_id=change.to_manager_user_id)


# event payloads

def customer_created(customer: Customer) -> events_pb2.CustomerCreated:
    return events_pb2.CustomerCreated(customer=customer_to_proto(customer))


def customer_updated(customer: Customer, changed: list[str]) -> events_pb2.CustomerUpdated:
    return events_pb2.CustomerUpdated(customer=customer_to_proto(customer),
                                      changed_fields=changed)


def customer_merged(kept: Customer, merged: Customer) -> events_pb2.CustomerMerged:
    return events_pb2.CustomerMerged(customer=customer_to_proto(kept),
                                     merged_customer_id=merged.id,
                                     merged_customer_name=merged.name)


def registration_submitted(registration: Registration) -> events_pb2.RegistrationSubmitted:
    return events_pb2.RegistrationSubmitted(registration=registration_to_proto(registration))


def registration_approved(registration: Registration,
                          auto_approved: bool = False) -> events_pb2.RegistrationApproved:
    return events_pb2.RegistrationApproved(registration=registration_to_proto(registration),
                                           auto_approved=auto_approved)


def registration_rejected(registration: Registration) -> events_pb2.RegistrationRejected:
    return events_pb2.RegistrationRejected(registration=registration_to_proto(registration),
                                           reason=registration.decision_note)


def registration_recalled(registration: Registration) -> events_pb2.RegistrationRecalled:
    return events_pb2.RegistrationRecalled(registration=registration_to_proto(registration))


def registration_expired(registration: Registration) -> events_pb2.RegistrationExpired:
    return events_pb2.RegistrationExpired(registration=registration_to_proto(registration))


def registration_renewed(registration: Registration, previous) -> events_pb2.RegistrationRenewed:
    return events_pb2.RegistrationRenewed(registration=registration_to_proto(registration),
                                          previous_protected_until=to_timestamp(previous))


def stage_advanced(registration: Registration,
                   previous_stage: str) -> events_pb2.RegistrationStageAdvanced:
    return events_pb2.RegistrationStageAdvanced(
        registration=registration_to_proto(registration), previous_stage=previous_stage)


def note_added(note: Note, next_step: str) -> events_pb2.RegistrationNoteAdded:
    return events_pb2.RegistrationNoteAdded(note=note_to_proto(note), next_step=next_step)


def conflict_raised(view: ConflictView) -> events_pb2.ConflictRaised:
    return events_pb2.ConflictRaised(conflict=conflict_to_proto(view))


def conflict_resolved(view: ConflictView) -> events_pb2.ConflictResolved:
    return events_pb2.ConflictResolved(conflict=conflict_to_proto(view))


def lead_created(lead: Lead) -> events_pb2.LeadCreated:
    return events_pb2.LeadCreated(lead=lead_to_proto(lead))


def lead_assigned(lead: Lead, auto_assigned: bool) -> events_pb2.LeadAssigned:
    return events_pb2.LeadAssigned(lead=lead_to_proto(lead), auto_assigned=auto_assigned)


def lead_claimed(lead: Lead) -> events_pb2.LeadClaimed:
    return events_pb2.LeadClaimed(lead=lead_to_proto(lead),
                                  registration_id=lead.registration_id)


def lead_returned(lead: Lead, previous_dealer_id: str, *, deadline_passed: bool,
                  reason: str) -> events_pb2.LeadReturned:
    return events_pb2.LeadReturned(lead=lead_to_proto(lead),
                                   previous_dealer_id=previous_dealer_id,
                                   deadline_passed=deadline_passed, reason=reason)


def authorization_granted(grant: Authorization) -> events_pb2.AuthorizationGranted:
    return events_pb2.AuthorizationGranted(authorization=authorization_to_proto(grant))


def authorization_revoked(grant: Authorization) -> events_pb2.AuthorizationRevoked:
    return events_pb2.AuthorizationRevoked(authorization=authorization_to_proto(grant),
                                           reason=grant.revoke_reason)


def authorization_expired(grant: Authorization) -> events_pb2.AuthorizationExpired:
    return events_pb2.AuthorizationExpired(authorization=authorization_to_proto(grant))


def authorization_owner_changed(grant: Authorization, previous_owner_user_id: str
                                ) -> events_pb2.AuthorizationOwnerChanged:
    return events_pb2.AuthorizationOwnerChanged(
        authorization=authorization_to_proto(grant),
        previous_owner_user_id=previous_owner_user_id)


def dealer_notified(notice: Notice) -> events_pb2.DealerNotified:
    return events_pb2.DealerNotified(
        dealer_id=notice.dealer_id, kind=notice.kind, registration_id=notice.registration_id,
        conflict_id=notice.conflict_id, lead_id=notice.lead_id, message=notice.message)
