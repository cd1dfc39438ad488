"""The registration service's gRPC servicer: translate the request into domain terms,
call the use case with its collaborators from ``Deps``, translate the answer
(services/registration/messages.py)."""

from __future__ import annotations

from qudao.registration.v1 import registration_pb2 as pb
from qudao.registration.v1 import registration_pb2_grpc

from services.registration import messages as m
from services.registration.domain.authorizations import AuthorizationQuery, GrantInput
from services.registration.domain.customers import CustomerQuery, DuplicateQuery
from services.registration.domain.leads import LeadInput, LeadQuery
from services.registration.domain.registrations import (
    AddNote,
    AdvanceStage,
    ConflictQuery,
    FunnelDimension,
    FunnelQuery,
    RegistrationQuery,
    SubmitRegistration,
)
from services.registration.usecases import (
    aliases,
    authorizations,
    conflicts,
    customers,
    leads,
    pipeline,
    registrations,
)
from services.registration.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import page_info_of, page_request_of, to_timestamp
from shared.tabular import Table, read_table_isolated


async def _table(request) -> Table:
    """An import request's file as rows (read in a bounded child process)."""
    return await read_table_isolated(request.content, request.filename, request.format,
                                     request.encoding)


def _set(mapping: dict, values) -> frozenset:
    """Repeated enum values in domain terms; unknown numbers are left out."""
    return frozenset(mapping[v] for v in values if v in mapping)


class RegistrationServicer(registration_pb2_grpc.RegistrationServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # customers and the duplicate check

    async def CreateCustomer(self, request, context):
        d = self.deps
        created = await customers.create_customer(
            m.customer_input_from_proto(request.customer), who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, names=d.names, places=d.places,
            policy=d.policy)
        return pb.CreateCustomerResponse(
            customer=m.customer_to_proto(created.customer),
            possible_duplicates=[m.candidate_to_proto(c) for c in created.possible_duplicates])

    async def GetCustomer(self, request, context):
        customer = await customers.get_customer(request.id, who=current_principal(),
                                                uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetCustomerResponse(customer=m.customer_to_proto(customer))

    async def ListCustomers(self, request, context):
        page = await customers.list_customers(
            CustomerQuery(request.query, request.division_code, request.customer_type),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListCustomersResponse(customers=[m.customer_to_proto(c) for c in page.items],
                                        page=page_info_of(page))

    async def UpdateCustomer(self, request, context):
        d = self.deps
        customer = await customers.update_customer(
            request.id, m.customer_input_from_proto(request.customer),
            list(request.update_mask.paths), who=current_principal(), uow=d.uow(),
            clock=d.clock, scopes=d.scopes, names=d.names, places=d.places, policy=d.policy,
            expected_version=request.expected_version)
        return pb.UpdateCustomerResponse(customer=m.customer_to_proto(customer))

    async def ImportCustomers(self, request, context):
        d = self.deps
        report = await customers.import_customers(
            await _table(request), dry_run=request.dry_run, who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, names=d.names, places=d.places,
            policy=d.policy)
        return m.customers_imported(report)

    async def ImportAliases(self, request, context):
        d = self.deps
        report = await aliases.import_aliases(
            await _table(request), dry_run=request.dry_run, who=current_principal(),
            uow=d.uow(), clock=d.clock, names=d.names)
        return m.aliases_imported(report)

    async def MergeCustomers(self, request, context):
        d = self.deps
        customer = await aliases.merge_customers(
            request.customer_id, request.merged_customer_id, request.note,
            who=current_principal(), uow=d.uow(), clock=d.clock, scopes=d.scopes,
            names=d.names)
        return pb.MergeCustomersResponse(customer=m.customer_to_proto(customer))

    async def CheckDuplicates(self, request, context):
        d = self.deps
        check = await customers.check_duplicates(
            DuplicateQuery(request.name, request.credit_code, request.address,
                           request.division_code, request.product_line),
            who=current_principal(), uow=d.uow(), scopes=d.scopes, names=d.names,
            places=d.places, policy=d.policy)
        return m.duplicate_check_to_proto(check)

    # registrations

    async def SubmitRegistration(self, request, context):
        d = self.deps
        which = request.WhichOneof("customer")
        submitted = await registrations.submit_registration(
            SubmitRegistration(
                product_line=request.product_line, dealer_id=request.dealer_id,
                customer_id=request.customer_id if which == "customer_id" else "",
                new_customer=(m.customer_input_from_proto(request.new_customer)
                              if which == "new_customer" else None),
                department=request.department, note=request.note,
                client_request_id=request.client_request_id),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes,
            identity=d.identity, names=d.names, places=d.places, policy=d.policy)
        return pb.SubmitRegistrationResponse(
            registration=m.registration_to_proto(submitted.registration),
            auto_approved=submitted.auto_approved)

    async def GetRegistration(self, request, context):
        registration = await registrations.get_registration(
            request.id, who=current_principal(), uow=self.deps.uow(), scopes=self.deps.scopes)
        return pb.GetRegistrationResponse(registration=m.registration_to_proto(registration))

    async def RecallRegistration(self, request, context):
        d = self.deps
        registration = await registrations.recall(
            request.id, request.reason, who=current_principal(), uow=d.uow(), clock=d.clock,
            scopes=d.scopes)
        return pb.RecallRegistrationResponse(registration=m.registration_to_proto(registration))

    async def ApproveRegistration(self, request, context):
        d = self.deps
        registration = await registrations.approve(
            request.id, request.comment, who=current_principal(), uow=d.uow(), clock=d.clock,
            scopes=d.scopes, policy=d.policy)
        return pb.ApproveRegistrationResponse(
            registration=m.registration_to_proto(registration))

    async def RejectRegistration(self, request, context):
        d = self.deps
        registration = await registrations.reject(
            request.id, request.reason, who=current_principal(), uow=d.uow(), clock=d.clock,
            scopes=d.scopes)
        return pb.RejectRegistrationResponse(registration=m.registration_to_proto(registration))

    async def RenewRegistration(self, request, context):
        d = self.deps
        renewed = await registrations.renew(
            request.id, request.reason, who=current_principal(), uow=d.uow(), clock=d.clock,
            scopes=d.scopes, policy=d.policy)
        return pb.RenewRegistrationResponse(
            registration=m.registration_to_proto(renewed.registration),
            previous_protected_until=to_timestamp(renewed.previous_protected_until))

    async def ListRegistrations(self, request, context):
        page = await registrations.list_registrations(
            RegistrationQuery(
                dealer_id=request.dealer_id, customer_id=request.customer_id,
                product_line=request.product_line,
                statuses=_set(m.PROTO_TO_STATUS, request.statuses),
                region_code=request.region_code, approver_user_id=request.approver_user_id,
                stage=request.stage),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListRegistrationsResponse(
            registrations=[m.registration_to_proto(r) for r in page.items],
            page=page_info_of(page))

    async def ListExpiringRegistrations(self, request, context):
        d = self.deps
        page = await registrations.list_expiring(
            request.dealer_id, request.within_days, page_request_of(request.page),
            who=current_principal(), uow=d.uow(), clock=d.clock, scopes=d.scopes,
            policy=d.policy)
        return pb.ListExpiringRegistrationsResponse(
            registrations=[m.registration_to_proto(r) for r in page.items],
            page=page_info_of(page))

    # conflicts

    async def ListConflicts(self, request, context):
        page = await conflicts.list_conflicts(
            ConflictQuery(status=m.PROTO_TO_CONFLICT.get(request.status),
                          region_code=request.region_code, product_line=request.product_line,
                          dealer_id=request.dealer_id),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListConflictsResponse(conflicts=[m.conflict_to_proto(c) for c in page.items],
                                        page=page_info_of(page))

    async def ResolveConflict(self, request, context):
        d = self.deps
        view = await conflicts.resolve_conflict(
            request.conflict_id, request.winning_registration_id, request.note,
            same_customer=request.same_customer, who=current_principal(), uow=d.uow(),
            clock=d.clock, scopes=d.scopes, names=d.names, policy=d.policy)
        return pb.ResolveConflictResponse(conflict=m.conflict_to_proto(view))

    # leads

    async def CreateLead(self, request, context):
        d = self.deps
        lead = await leads.create_lead(
            _lead_input(request), who=current_principal(), uow=d.uow(), clock=d.clock,
            ids=d.ids, places=d.places, policy=d.policy)
        return pb.CreateLeadResponse(lead=m.lead_to_proto(lead))

    async def ImportLeads(self, request, context):
        d = self.deps
        report = await leads.import_leads(
            await _table(request), dry_run=request.dry_run, who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, places=d.places, policy=d.policy)
        return m.leads_imported(report)

    async def AssignLead(self, request, context):
        d = self.deps
        lead = await leads.assign_lead(
            request.lead_id, request.dealer_id, request.reason, who=current_principal(),
            uow=d.uow(), clock=d.clock, scopes=d.scopes, identity=d.identity, policy=d.policy)
        return pb.AssignLeadResponse(lead=m.lead_to_proto(lead))

    async def ClaimLead(self, request, context):
        d = self.deps
        claimed = await leads.claim_lead(
            request.lead_id, request.dealer_id, who=current_principal(), uow=d.uow(),
            clock=d.clock, ids=d.ids, scopes=d.scopes, identity=d.identity, names=d.names,
            places=d.places, policy=d.policy)
        return pb.ClaimLeadResponse(lead=m.lead_to_proto(claimed.lead),
                                    registration=m.registration_to_proto(claimed.registration))

    async def ReleaseLead(self, request, context):
        lead = await leads.release_lead(request.lead_id, request.reason,
                                        who=current_principal(), uow=self.deps.uow(),
                                        scopes=self.deps.scopes)
        return pb.ReleaseLeadResponse(lead=m.lead_to_proto(lead))

    async def ListLeads(self, request, context):
        page = await leads.list_leads(
            LeadQuery(statuses=_set(m.PROTO_TO_LEAD, request.statuses),
                      assigned_dealer_id=request.assigned_dealer_id,
                      division_code=request.division_code, product_line=request.product_line),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListLeadsResponse(leads=[m.lead_to_proto(lead) for lead in page.items],
                                    page=page_info_of(page))

    # pipeline

    async def AdvanceStage(self, request, context):
        d = self.deps
        registration = await pipeline.advance_stage(
            AdvanceStage(request.registration_id, request.stage, request.note,
                         request.next_step),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes,
            policy=d.policy)
        return pb.AdvanceStageResponse(registration=m.registration_to_proto(registration))

    async def AddNote(self, request, context):
        d = self.deps
        note = await pipeline.add_note(
            AddNote(request.registration_id, request.text, request.next_step,
                    request.next_step_due),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes)
        return pb.AddNoteResponse(note=m.note_to_proto(note))

    async def ListNotes(self, request, context):
        page = await pipeline.list_notes(request.registration_id, page_request_of(request.page),
                                         who=current_principal(), uow=self.deps.uow(),
                                         scopes=self.deps.scopes)
        return pb.ListNotesResponse(notes=[m.note_to_proto(n) for n in page.items],
                                    page=page_info_of(page))

    async def GetFunnel(self, request, context):
        funnel = await pipeline.funnel(
            FunnelQuery(group_by=m.PROTO_TO_DIMENSION.get(request.group_by,
                                                          FunnelDimension.WHOLE),
                        region_code=request.region_code, dealer_id=request.dealer_id,
                        product_line=request.product_line,
                        approved_from=request.approved_from, approved_to=request.approved_to),
            who=current_principal(), uow=self.deps.uow(), scopes=self.deps.scopes,
            policy=self.deps.policy)
        return m.funnel_to_proto(funnel)

    # authorizations

    async def GrantAuthorization(self, request, context):
        d = self.deps
        grant = await authorizations.grant(
            GrantInput(dealer_id=request.dealer_id, product_line=request.product_line,
                       product_code=request.product_code, customer_id=request.customer_id,
                       department=request.department, valid_from=request.valid_from,
                       valid_to=request.valid_to, owner_user_id=request.owner_user_id),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids, scopes=d.scopes,
            identity=d.identity)
        return pb.GrantAuthorizationResponse(authorization=m.authorization_to_proto(grant))

    async def RevokeAuthorization(self, request, context):
        d = self.deps
        grant = await authorizations.revoke(request.id, request.reason,
                                            who=current_principal(), uow=d.uow(),
                                            clock=d.clock, scopes=d.scopes)
        return pb.RevokeAuthorizationResponse(authorization=m.authorization_to_proto(grant))

    async def ListAuthorizations(self, request, context):
        page = await authorizations.list_authorizations(
            AuthorizationQuery(dealer_id=request.dealer_id, customer_id=request.customer_id,
                               product_line=request.product_line,
                               owner_user_id=request.owner_user_id,
                               statuses=_set(m.PROTO_TO_AUTH, request.statuses),
                               valid_on=request.valid_on),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scopes=self.deps.scopes)
        return pb.ListAuthorizationsResponse(
            authorizations=[m.authorization_to_proto(a) for a in page.items],
            page=page_info_of(page))

    async def ExportAuthorizationLetter(self, request, context):
        d = self.deps
        exported = await authorizations.export_letter(
            request.id, m.PROTO_TO_EXPORT.get(request.format),
            who=current_principal(), uow=d.uow(), clock=d.clock, scopes=d.scopes,
            letters=d.letters)
        return pb.ExportAuthorizationLetterResponse(file=m.exported_file_to_proto(exported))


def _lead_input(request: pb.CreateLeadRequest) -> LeadInput:
    return LeadInput(customer_id=request.customer_id, customer_name=request.customer_name,
                     address=request.address, division_code=request.division_code,
                     product_line=request.product_line, department=request.department,
                     contact_name=request.contact_name, contact_phone=request.contact_phone,
                     note=request.note)
