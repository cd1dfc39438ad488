"""Customers, registrations (报备), conflicts, the lead pool, the pipeline and
authorizations (授权)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from google.protobuf import field_mask_pb2
from pydantic import Field
from qudao.common.v1 import files_pb2
from qudao.registration.v1 import registration_pb2 as pb

from gateway.clients import call
from gateway.import_jobs import run_import
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    Body,
    Caller,
    IdempotencyKey,
    IfMatch,
    Page,
    Services,
    client_reference,
    idempotent,
    tagged,
)
from gateway.routes.stats import region_names
from gateway.uploads import IMPORT_BODY, read_upload
from shared.errors import InvalidArgument

router = APIRouter(prefix="/api/v1", tags=["registration"])
CustomerType = Literal["hospital", "clinic", "pharmacy", "distributor_customer", "other", ""]


def _enum(descriptor, name: str, field_name: str) -> int:
    if not name:
        return 0
    number = enum_number(descriptor, name)
    if number is None:
        names = [v.name for v in descriptor.values if v.number]
        raise InvalidArgument.field(field_name, f"unknown value {name!r}; one of {names}")
    return number


def _enums(descriptor, names: list[str], field_name: str) -> list[int]:
    return [_enum(descriptor, n, field_name) for n in names if n]


class CustomerBody(Body):
    name: str = Field(max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=50)
    credit_code: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    division_code: str = Field(default="", max_length=6,
                               description="GB/T 2260 code; required when the address "
                                           "cannot be placed, overrides it otherwise")
    customer_type: CustomerType = "hospital"
    grade: str = Field(default="", max_length=32)
    departments: list[str] = Field(default_factory=list, max_length=200)

    def to_proto(self) -> pb.CustomerInput:
        return pb.CustomerInput(
            name=self.name, aliases=self.aliases, credit_code=self.credit_code,
            address=self.address, division_code=self.division_code, grade=self.grade,
            departments=self.departments,
            customer_type=_enum(pb.CustomerType.DESCRIPTOR, self.customer_type,
                                "customer_type"))


class CustomerPatch(Body):
    name: str | None = Field(default=None, max_length=200)
    aliases: list[str] | None = None
    credit_code: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=300)
    division_code: str | None = Field(default=None, max_length=6)
    customer_type: CustomerType | None = None
    grade: str | None = Field(default=None, max_length=32)
    departments: list[str] | None = None


class DuplicateCheckBody(Body):
    name: str = Field(default="", max_length=200)
    credit_code: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)
    division_code: str = Field(default="", max_length=6)
    product_line: str = Field(default="", max_length=64)


class RegistrationBody(Body):
    dealer_id: str = Field(default="", description="defaults to the caller's dealer")
    product_line: str = Field(max_length=64)
    customer_id: str = Field(default="", description="an existing customer, or give customer")
    customer: CustomerBody | None = Field(default=None, description="a new customer")
    department: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=2000)
    client_request_id: str = Field(default="", max_length=64,
                                   description="repeating it returns the first result")


class ReasonBody(Body):
    reason: str = Field(default="", max_length=2000)


class CommentBody(Body):
    comment: str = Field(default="", max_length=2000)


class StageBody(Body):
    stage: str = Field(max_length=32)
    note: str = Field(default="", max_length=2000)
    next_step: str = Field(default="", max_length=300)


class NoteBody(Body):
    text: str = Field(max_length=4000)
    next_step: str = Field(default="", max_length=300)
    next_step_due: str = Field(default="", max_length=10, description="YYYY-MM-DD")


class ResolveBody(Body):
    winning_registration_id: str
    note: str = Field(max_length=2000)
    same_customer: bool = Field(default=False, description=(
        "the claims' customers are one: the losers' customers are merged into the "
        "winner's, their spellings kept as aliases"))


class MergeBody(Body):
    merged_customer_id: str = Field(description="folded into the customer of the path")
    note: str = Field(max_length=2000)


class LeadBody(Body):
    customer_id: str = ""
    customer_name: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=300)
    division_code: str = Field(default="", max_length=6)
    product_line: str = Field(max_length=64)
    department: str = Field(default="", max_length=100)
    contact_name: str = Field(default="", max_length=100)
    contact_phone: str = Field(default="", max_length=40)
    note: str = Field(default="", max_length=2000)


class AssignLeadBody(Body):
    dealer_id: str
    reason: str = Field(default="", max_length=2000)


class ClaimLeadBody(Body):
    dealer_id: str = Field(default="", description="defaults to the caller's dealer")


class GrantBody(Body):
    dealer_id: str
    product_line: str = Field(default="", max_length=64)
    product_code: str = Field(default="", max_length=64)
    customer_id: str
    department: str = Field(default="", max_length=100)
    valid_from: str = Field(max_length=10, description="YYYY-MM-DD")
    valid_to: str = Field(max_length=10, description="YYYY-MM-DD")
    owner_user_id: str = Field(default="", description="defaults to the caller")


Encoding = Literal["utf8", "gbk", "gb18030", ""]


# ---- customers ------------------------------------------------------------------------


@router.post("/customers", status_code=201)
async def create_customer(body: CustomerBody, caller: Caller, services: Services,
                          key: IdempotencyKey) -> dict:
    """Create a customer. The duplicate check runs first: an exact duplicate (credit
    code, normalized name or alias in the same city) is refused with 409 naming the
    existing customer; fuzzy look-alikes are returned in ``possible_duplicates``."""
    return to_json(await call(services.registration.CreateCustomer,
                              pb.CreateCustomerRequest(customer=body.to_proto()),
                              metadata=idempotent(key)))


@router.get("/customers")
async def list_customers(caller: Caller, services: Services, page: Page, query: str = "",
                         division_code: str = "", customer_type: CustomerType = "") -> dict:
    return to_json(await call(services.registration.ListCustomers, pb.ListCustomersRequest(
        query=query, division_code=division_code, page=page,
        customer_type=_enum(pb.CustomerType.DESCRIPTOR, customer_type, "customer_type"))))


@router.post("/customers/check-duplicates")
async def check_duplicates(body: DuplicateCheckBody, caller: Caller, services: Services) -> dict:
    """The evidence a registration would get; writes nothing."""
    return to_json(await call(services.registration.CheckDuplicates,
                              pb.CheckDuplicatesRequest(**body.model_dump())))


@router.post("/customers/import", openapi_extra=IMPORT_BODY)
async def import_customers(request: Request, caller: Caller, services: Services,
                           filename: Annotated[str, Query(max_length=200)] = "",
                           dry_run: bool = False, encoding: Encoding = ""):
    """Customers from a CSV/XLSX file (the raw body, or a form upload in the field
    ``file``). All or nothing: any failing row (bad credit code, address that cannot be
    placed, duplicate) means nothing is written and ``errors`` lists every failing row.
    Columns: name, credit_code, address, division_code, grade, aliases (;-separated),
    departments (;-separated) — or 名称, 统一社会信用代码, 地址, 区划代码, 等级, 别名, 科室.
    Over 1 MiB (or ``Prefer: respond-async``) a job: 202 and ``/api/v1/import-jobs/{id}``."""
    upload = await read_upload(request, filename)
    encoded = _enum(files_pb2.TextEncoding.DESCRIPTOR, encoding, "encoding")
    return await run_import(request, caller, "customers", upload, lambda timeout: call(
        services.registration.ImportCustomers, pb.ImportCustomersRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run, encoding=encoded), timeout))


@router.post("/customers/aliases/import", openapi_extra=IMPORT_BODY)
async def import_aliases(request: Request, caller: Caller, services: Services,
                         filename: Annotated[str, Query(max_length=200)] = "",
                         dry_run: bool = False, encoding: Encoding = ""):
    """HQ's list of other names of customers (CSV/XLSX: name, alias, source, and
    division_code where a name is not unique — or 名称, 别名, 来源, 区划代码). All or
    nothing; the duplicate check matches the aliases like names from then on. Over 1 MiB
    (or ``Prefer: respond-async``) a job: 202 and ``/api/v1/import-jobs/{id}``."""
    upload = await read_upload(request, filename)
    encoded = _enum(files_pb2.TextEncoding.DESCRIPTOR, encoding, "encoding")
    return await run_import(request, caller, "aliases", upload, lambda timeout: call(
        services.registration.ImportAliases, pb.ImportAliasesRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run, encoding=encoded), timeout))


@router.post("/customers/{customer_id}/merge")
async def merge_customers(customer_id: str, body: MergeBody, caller: Caller,
                          services: Services) -> dict:
    """HQ folds another customer into this one: its names become aliases, its
    registrations, grants and leads move here."""
    return to_json((await call(services.registration.MergeCustomers, pb.MergeCustomersRequest(
        customer_id=customer_id, merged_customer_id=body.merged_customer_id,
        note=body.note))).customer)


@router.get("/customers/{customer_id}")
async def get_customer(customer_id: str, caller: Caller, services: Services,
                       response: Response) -> dict:
    return tagged(response, to_json((await call(services.registration.GetCustomer,
                                                pb.GetCustomerRequest(id=customer_id))).customer))


@router.patch("/customers/{customer_id}")
async def update_customer(customer_id: str, body: CustomerPatch, caller: Caller,
                          services: Services, version: IfMatch, response: Response) -> dict:
    """Change the named fields only. Setting division_code marks it as overridden. With
    ``If-Match`` (the ETag of a GET) only while the customer is still that version (412
    otherwise)."""
    values = body.model_dump(exclude_unset=True)
    customer = pb.Customer()
    for name, value in values.items():
        if value is None:
            raise InvalidArgument.field(name, "must not be null")
        if name == "customer_type":
            customer.customer_type = _enum(pb.CustomerType.DESCRIPTOR, value, name)
        elif isinstance(value, list):
            getattr(customer, name).extend(value)
        else:
            setattr(customer, name, value)
    return tagged(response, to_json((await call(
        services.registration.UpdateCustomer, pb.UpdateCustomerRequest(
            id=customer_id, customer=customer, expected_version=version,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(values))))).customer))


# ---- registrations --------------------------------------------------------------------


@router.post("/registrations", status_code=201)
async def submit_registration(body: RegistrationBody, caller: Caller, services: Services,
                              key: IdempotencyKey) -> dict:
    """Register (报备) a customer for a product line: territory and product line are
    checked, then the duplicate check; the result is approved automatically (when the
    rules allow), waits for the channel manager, or goes to HQ review. When another
    dealer already holds the customer for this product line, the registration is
    recorded with that claim as evidence (rejected if it is protected, in the HQ
    conflict queue if it is still pending)."""
    if bool(body.customer_id) == (body.customer is not None):
        raise InvalidArgument.field("customer_id", "give exactly one of customer_id and "
                                                   "customer")
    request = pb.SubmitRegistrationRequest(
        dealer_id=body.dealer_id, product_line=body.product_line, department=body.department,
        note=body.note,
        client_request_id=client_reference(body.client_request_id, key, "client_request_id"))
    if body.customer is not None:
        request.new_customer.CopyFrom(body.customer.to_proto())
    else:
        request.customer_id = body.customer_id
    response = await call(services.registration.SubmitRegistration, request)
    result = to_json(response.registration)
    result["auto_approved"] = response.auto_approved
    return result


@router.get("/registrations")
async def list_registrations(caller: Caller, services: Services, page: Page,
                             dealer_id: str = "", customer_id: str = "", product_line: str = "",
                             status: Annotated[list[str] | None, Query()] = None,
                             region_code: str = "", approver_user_id: str = "",
                             stage: str = "") -> dict:
    return to_json(await call(services.registration.ListRegistrations,
                              pb.ListRegistrationsRequest(
                                  dealer_id=dealer_id, customer_id=customer_id,
                                  product_line=product_line, region_code=region_code,
                                  approver_user_id=approver_user_id, stage=stage, page=page,
                                  statuses=_enums(pb.RegistrationStatus.DESCRIPTOR,
                                                  status or [], "status"))))


@router.get("/registrations/expiring")
async def list_expiring(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                        within_days: Annotated[int, Query(ge=0, le=3650)] = 0) -> dict:
    """Approved registrations whose protection ends within ``within_days`` (default 14),
    soonest first."""
    return to_json(await call(services.registration.ListExpiringRegistrations,
                              pb.ListExpiringRegistrationsRequest(
                                  dealer_id=dealer_id, within_days=within_days, page=page)))


@router.get("/registrations/{registration_id}")
async def get_registration(registration_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.registration.GetRegistration,
                               pb.GetRegistrationRequest(id=registration_id))).registration)


@router.post("/registrations/{registration_id}/recall")
async def recall_registration(registration_id: str, body: ReasonBody, caller: Caller,
                              services: Services) -> dict:
    return to_json((await call(services.registration.RecallRegistration,
                               pb.RecallRegistrationRequest(id=registration_id,
                                                            reason=body.reason))).registration)


@router.post("/registrations/{registration_id}/approve")
async def approve_registration(registration_id: str, body: CommentBody, caller: Caller,
                               services: Services) -> dict:
    return to_json((await call(services.registration.ApproveRegistration,
                               pb.ApproveRegistrationRequest(
                                   id=registration_id, comment=body.comment))).registration)


@router.post("/registrations/{registration_id}/reject")
async def reject_registration(registration_id: str, body: ReasonBody, caller: Caller,
                              services: Services) -> dict:
    return to_json((await call(services.registration.RejectRegistration,
                               pb.RejectRegistrationRequest(
                                   id=registration_id, reason=body.reason))).registration)


@router.post("/registrations/{registration_id}/renew")
async def renew_registration(registration_id: str, body: ReasonBody, caller: Caller,
                             services: Services) -> dict:
    return to_json(await call(services.registration.RenewRegistration,
                              pb.RenewRegistrationRequest(id=registration_id,
                                                          reason=body.reason)))


@router.post("/registrations/{registration_id}/stage")
async def advance_stage(registration_id: str, body: StageBody, caller: Caller,
                        services: Services) -> dict:
    """Move the pipeline forward (初步接触 → 需求确认 → 报价协商 → 合同签订); this renews
    the protection period."""
    return to_json((await call(services.registration.AdvanceStage, pb.AdvanceStageRequest(
        registration_id=registration_id, stage=body.stage, note=body.note,
        next_step=body.next_step))).registration)


@router.post("/registrations/{registration_id}/notes", status_code=201)
async def add_note(registration_id: str, body: NoteBody, caller: Caller,
                   services: Services, key: IdempotencyKey) -> dict:
    return to_json((await call(services.registration.AddNote, pb.AddNoteRequest(
        registration_id=registration_id, text=body.text, next_step=body.next_step,
        next_step_due=body.next_step_due), metadata=idempotent(key))).note)


@router.get("/registrations/{registration_id}/notes")
async def list_notes(registration_id: str, caller: Caller, services: Services,
                     page: Page) -> dict:
    return to_json(await call(services.registration.ListNotes, pb.ListNotesRequest(
        registration_id=registration_id, page=page)))


@router.get("/funnel")
async def get_funnel(caller: Caller, services: Services,
                     group_by: Literal["region", "dealer", "product_line", ""] = "",
                     region_code: str = "", dealer_id: str = "", product_line: str = "",
                     approved_from: str = "", approved_to: str = "") -> dict:
    """Approved registrations per pipeline stage, grouped by region, dealer or product
    line, within the caller's scope; grouped by region, each group is labelled with the
    region's name."""
    funnel = await call(services.registration.GetFunnel, pb.GetFunnelRequest(
        group_by=_enum(pb.FunnelDimension.DESCRIPTOR, group_by, "group_by"),
        region_code=region_code, dealer_id=dealer_id, product_line=product_line,
        approved_from=approved_from, approved_to=approved_to))
    if group_by == "region":
        names = await region_names(services)
        for group in funnel.groups:
            group.label = names.get(group.key, group.label)
    return to_json(funnel)


# ---- conflicts ------------------------------------------------------------------------


@router.get("/conflicts")
async def list_conflicts(caller: Caller, services: Services, page: Page,
                         status: Literal["open", "resolved", ""] = "", region_code: str = "",
                         product_line: str = "", dealer_id: str = "") -> dict:
    """The HQ conflict queue: each conflict with every claim and its evidence."""
    return to_json(await call(services.registration.ListConflicts, pb.ListConflictsRequest(
        status=_enum(pb.ConflictStatus.DESCRIPTOR, status, "status"), region_code=region_code,
        product_line=product_line, dealer_id=dealer_id, page=page)))


@router.post("/conflicts/{conflict_id}/resolve")
async def resolve_conflict(conflict_id: str, body: ResolveBody, caller: Caller,
                           services: Services) -> dict:
    """HQ picks the winning claim; the others are rejected and every dealer involved is
    notified."""
    return to_json((await call(services.registration.ResolveConflict, pb.ResolveConflictRequest(
        conflict_id=conflict_id, winning_registration_id=body.winning_registration_id,
        note=body.note, same_customer=body.same_customer))).conflict)


# ---- leads ----------------------------------------------------------------------------


@router.post("/leads", status_code=201)
async def create_lead(body: LeadBody, caller: Caller, services: Services,
                      key: IdempotencyKey) -> dict:
    """HQ enters a lead (公海); it is assigned at once to a dealer whose territory covers
    its division: the lowest tier number first (platform, tier one, tier two), then the
    least loaded (fewest unclaimed leads), then the one assigned longest ago."""
    return to_json((await call(services.registration.CreateLead,
                               pb.CreateLeadRequest(**body.model_dump()),
                               metadata=idempotent(key))).lead)


@router.post("/leads/import", openapi_extra=IMPORT_BODY)
async def import_leads(request: Request, caller: Caller, services: Services,
                       filename: Annotated[str, Query(max_length=200)] = "",
                       dry_run: bool = False, encoding: Encoding = ""):
    """Leads from a CSV/XLSX file (raw body or form field ``file``), all or nothing.
    Columns: customer_name, address, division_code, product_line, department,
    contact_name, contact_phone, note. Over 1 MiB (or ``Prefer: respond-async``) a job."""
    upload = await read_upload(request, filename)
    encoded = _enum(files_pb2.TextEncoding.DESCRIPTOR, encoding, "encoding")
    return await run_import(request, caller, "leads", upload, lambda timeout: call(
        services.registration.ImportLeads, pb.ImportLeadsRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run, encoding=encoded), timeout))


@router.get("/leads")
async def list_leads(caller: Caller, services: Services, page: Page,
                     status: Annotated[list[str] | None, Query()] = None,
                     assigned_dealer_id: str = "", division_code: str = "",
                     product_line: str = "") -> dict:
    return to_json(await call(services.registration.ListLeads, pb.ListLeadsRequest(
        statuses=_enums(pb.LeadStatus.DESCRIPTOR, status or [], "status"),
        assigned_dealer_id=assigned_dealer_id, division_code=division_code,
        product_line=product_line, page=page)))


@router.post("/leads/{lead_id}/assign")
async def assign_lead(lead_id: str, body: AssignLeadBody, caller: Caller,
                      services: Services) -> dict:
    return to_json((await call(services.registration.AssignLead, pb.AssignLeadRequest(
        lead_id=lead_id, dealer_id=body.dealer_id, reason=body.reason))).lead)


@router.post("/leads/{lead_id}/claim")
async def claim_lead(lead_id: str, body: ClaimLeadBody, caller: Caller,
                     services: Services) -> dict:
    """The assigned dealer claims the lead before its deadline: an approved registration
    with source hq_lead is created."""
    return to_json(await call(services.registration.ClaimLead, pb.ClaimLeadRequest(
        lead_id=lead_id, dealer_id=body.dealer_id)))


@router.post("/leads/{lead_id}/release")
async def release_lead(lead_id: str, body: ReasonBody, caller: Caller,
                       services: Services) -> dict:
    return to_json((await call(services.registration.ReleaseLead, pb.ReleaseLeadRequest(
        lead_id=lead_id, reason=body.reason))).lead)


# ---- authorizations -------------------------------------------------------------------


@router.post("/authorizations", status_code=201)
async def grant_authorization(body: GrantBody, caller: Caller, services: Services,
                              key: IdempotencyKey) -> dict:
    return to_json((await call(services.registration.GrantAuthorization,
                               pb.GrantAuthorizationRequest(**body.model_dump()),
                               metadata=idempotent(key))).authorization)


@router.get("/authorizations")
async def list_authorizations(caller: Caller, services: Services, page: Page,
                              dealer_id: str = "", customer_id: str = "",
                              product_line: str = "", owner_user_id: str = "",
                              status: Annotated[list[str] | None, Query()] = None,
                              valid_on: str = "") -> dict:
    """A dealer sees all its grants, a channel manager those of its dealers."""
    return to_json(await call(services.registration.ListAuthorizations,
                              pb.ListAuthorizationsRequest(
                                  dealer_id=dealer_id, customer_id=customer_id,
                                  product_line=product_line, owner_user_id=owner_user_id,
                                  valid_on=valid_on, page=page,
                                  statuses=_enums(pb.AuthorizationStatus.DESCRIPTOR,
                                                  status or [], "status"))))


@router.post("/authorizations/{authorization_id}/revoke")
async def revoke_authorization(authorization_id: str, body: ReasonBody, caller: Caller,
                               services: Services) -> dict:
    return to_json((await call(services.registration.RevokeAuthorization,
                               pb.RevokeAuthorizationRequest(
                                   id=authorization_id, reason=body.reason))).authorization)


@router.get("/authorizations/{authorization_id}/letter",
            responses={200: {"content": {"application/pdf": {}, "application/vnd.openxml"
                                         "formats-officedocument.spreadsheetml.sheet": {}}}})
async def export_letter(authorization_id: str, caller: Caller, services: Services,
                        format: Literal["pdf", "xlsx"] = "pdf") -> Response:
    """The authorization letter (授权书) as PDF (default) or XLSX."""
    response = await call(services.registration.ExportAuthorizationLetter,
                          pb.ExportAuthorizationLetterRequest(
                              id=authorization_id,
                              format=files_pb2.EXPORT_FORMAT_XLSX if format == "xlsx"
                              else files_pb2.EXPORT_FORMAT_PDF))
    file = response.file
    return Response(content=file.content, media_type=file.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}"})
