"""The registration service's gRPC servicer: translate messages, call the use case."""

from __future__ import annotations

from qudao.common.v1 import page_pb2
from qudao.registration.v1 import registration_pb2 as pb
from qudao.registration.v1 import registration_pb2_grpc

from services.registration.service import RegistrationService


def _page(token: str, total: int) -> page_pb2.PageInfo:
    return page_pb2.PageInfo(next_page_token=token, total_size=total)


class RegistrationServicer(registration_pb2_grpc.RegistrationServiceServicer):
    def __init__(self, service: RegistrationService) -> None:
        self.service = service

    # customers
    async def CreateCustomer(self, request, context):
        return await self.service.create_customer(request.customer)

    async def GetCustomer(self, request, context):
        return pb.GetCustomerResponse(customer=await self.service.get_customer(request.id))

    async def ListCustomers(self, request, context):
        items, token, total = await self.service.list_customers(request)
        return pb.ListCustomersResponse(customers=items, page=_page(token, total))

    async def UpdateCustomer(self, request, context):
        return pb.UpdateCustomerResponse(customer=await self.service.update_customer(
            request.id, request.customer, list(request.update_mask.paths)))

    async def ImportCustomers(self, request, context):
        return await self.service.import_customers(request)

    async def CheckDuplicates(self, request, context):
        return await self.service.check_duplicates(request)

    # registrations
    async def SubmitRegistration(self, request, context):
        return await self.service.submit_registration(request)

    async def GetRegistration(self, request, context):
        return pb.GetRegistrationResponse(
            registration=await self.service.get_registration(request.id))

    async def RecallRegistration(self, request, context):
        return pb.RecallRegistrationResponse(
            registration=await self.service.recall(request.id, request.reason))

    async def ApproveRegistration(self, request, context):
        return pb.ApproveRegistrationResponse(
            registration=await self.service.approve(request.id, request.comment))

    async def RejectRegistration(self, request, context):
        return pb.RejectRegistrationResponse(
            registration=await self.service.reject(request.id, request.reason))

    async def RenewRegistration(self, request, context):
        registration, previous = await self.service.renew(request.id, request.reason)
        response = pb.RenewRegistrationResponse(registration=registration)
        if previous is not None:
            response.previous_protected_until.FromDatetime(previous)
        return response

    async def ListRegistrations(self, request, context):
        items, token, total = await self.service.list_registrations(request)
        return pb.ListRegistrationsResponse(registrations=items, page=_page(token, total))

    async def ListExpiringRegistrations(self, request, context):
        items, token, total = await self.service.list_expiring(request)
        return pb.ListExpiringRegistrationsResponse(registrations=items,
                                                    page=_page(token, total))

    # conflicts
    async def ListConflicts(self, request, context):
        items, token, total = await self.service.list_conflicts(request)
        return pb.ListConflictsResponse(conflicts=items, page=_page(token, total))

    async def ResolveConflict(self, request, context):
        return pb.ResolveConflictResponse(conflict=await self.service.resolve_conflict(
            request.conflict_id, request.winning_registration_id, request.note))

    # leads
    async def CreateLead(self, request, context):
        return pb.CreateLeadResponse(lead=await self.service.create_lead(request))

    async def ImportLeads(self, request, context):
        return await self.service.import_leads(request)

    async def AssignLead(self, request, context):
        return pb.AssignLeadResponse(lead=await self.service.assign_lead(
            request.lead_id, request.dealer_id, request.reason))

    async def ClaimLead(self, request, context):
        lead, registration = await self.service.claim_lead(request.lead_id, request.dealer_id)
        return pb.ClaimLeadResponse(lead=lead, registration=registration)

    async def ReleaseLead(self, request, context):
        return pb.ReleaseLeadResponse(lead=await self.service.release_lead(
            request.lead_id, request.reason))

    async def ListLeads(self, request, context):
        items, token, total = await self.service.list_leads(request)
        return pb.ListLeadsResponse(leads=items, page=_page(token, total))

    # pipeline
    async def AdvanceStage(self, request, context):
        return pb.AdvanceStageResponse(registration=await self.service.advance_stage(request))

    async def AddNote(self, request, context):
        return pb.AddNoteResponse(note=await self.service.add_note(request))

    async def ListNotes(self, request, context):
        items, token, total = await self.service.list_notes(request)
        return pb.ListNotesResponse(notes=items, page=_page(token, total))

    async def GetFunnel(self, request, context):
        return await self.service.funnel(request)

    # authorizations
    async def GrantAuthorization(self, request, context):
        return pb.GrantAuthorizationResponse(authorization=await self.service.grant(request))

    async def RevokeAuthorization(self, request, context):
        return pb.RevokeAuthorizationResponse(
            authorization=await self.service.revoke(request.id, request.reason))

    async def ListAuthorizations(self, request, context):
        items, token, total = await self.service.list_authorizations(request)
        return pb.ListAuthorizationsResponse(authorizations=items, page=_page(token, total))

    async def ExportAuthorizationLetter(self, request, context):
        return pb.ExportAuthorizationLetterResponse(
            file=await self.service.export_letter(request.id, request.format))
