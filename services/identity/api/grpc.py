"""The identity service's gRPC servicer: translate the request, call the use case with
its collaborators from ``Deps``, translate the answer (messages.py)."""

from __future__ import annotations

from qudao.common.v1 import files_pb2, ids_pb2
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity import messages
from services.identity.domain.audience import Node as AudienceNode
from services.identity.domain.dealer_import import DealerFile
from services.identity.domain.materials import NewFile, NewMaterial
from services.identity.domain.model import (
    AssignmentFilter,
    AuditFilter,
    OrgUnitFilter,
    UserFilter,
)
from services.identity.domain.notices import NewAttachment, NewNotice, NoticeView
from services.identity.usecases import (
    assignments,
    audit,
    dealer_import,
    materials,
    notices,
    org,
    scope,
    sessions,
    tags,
    users,
)
from services.identity.usecases.ports import Deps
from shared.context import CLIENT_ADDRESS_KEY, current_principal
from shared.convert import from_timestamp, page_info_of, page_request_of
from shared.errors import InvalidArgument
from shared.pagination import MAX_PAGE_SIZE


def _known(mapping: dict, value: int, field: str, what: str):
    """A request's enum value as a domain value; 0 (unset) is None."""
    if not value:
        return None
    if value not in mapping:
        raise InvalidArgument.field(field, f"unknown {what}")
    return mapping[value]


def _at_most(values, limit: int, field: str) -> frozenset[str]:
    if len(values) > limit:
        raise InvalidArgument.field(field, f"at most {limit}, got {len(values)}")
    return frozenset(values)


def _client_address(context) -> str:
    """Where a sign-in came from: the gateway's client (metadata), else the caller of
    this RPC itself (``ipv4:10.0.0.7:51234`` → ``10.0.0.7``)."""
    given = dict(context.invocation_metadata() or ()).get(CLIENT_ADDRESS_KEY)
    if given:
        return given[:100]
    peer = context.peer() or ""
    return peer.split(":", 1)[-1].rsplit(":", 1)[0].strip("[]")


def _roles(values) -> tuple:
    return tuple(messages.PROTO_TO_ROLE.get(value) for value in values)


def expression_from_proto(expression: identity_pb2.AudienceExpression) -> AudienceNode:
    which = expression.WhichOneof("expression")
    if which == "term":
        kind = expression.term.WhichOneof("term")
        if kind is None:
            raise InvalidArgument.field("expression.term", "is empty")
        value = getattr(expression.term, kind)
        if kind == "tier":
            tier = messages.PROTO_TO_TIER.get(value)
            if tier is None:
                raise InvalidArgument.field("expression.term.tier", "unknown tier")
            value = tier.value
        return AudienceNode("term", kind=kind, value=value)
    if which in ("all_of", "any_of"):
        return AudienceNode("all" if which == "all_of" else "any", tuple(
            expression_from_proto(e) for e in getattr(expression, which).expressions))
    if which == "negate":
        return AudienceNode("not", (expression_from_proto(expression.negate),))
    raise InvalidArgument.field("expression", "an expression is required")


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _user(self, user) -> identity_pb2.User:
        return messages.user_to_proto(user, self.deps.clock.now())

    # ---- sessions --------------------------------------------------------------------

    async def Login(self, request, context):
        d = self.deps
        session = await sessions.login(request.username, request.password,
                                       source=_client_address(context), uow=d.uow(),
                                       passwords=d.passwords, tokens=d.tokens, clock=d.clock,
                                       limits=d.sign_in)
        return messages.login_to_proto(session, d.clock.now())

    async def RefreshToken(self, request, context):
        d = self.deps
        return messages.refresh_to_proto(await sessions.refresh(
            request.refresh_token, uow=d.uow(), tokens=d.tokens, clock=d.clock,
            revocations=d.revocations))

    async def Logout(self, request, context):
        d = self.deps
        await sessions.logout(request.refresh_token, who=current_principal(), uow=d.uow(),
                              clock=d.clock, revocations=d.revocations)
        return identity_pb2.LogoutResponse()

    async def WhoAmI(self, request, context):
        principal = current_principal()
        user = await sessions.who_am_i(who=principal, uow=self.deps.uow())
        return identity_pb2.WhoAmIResponse(user=self._user(user), principal=ids_pb2.Principal(
            subject=principal.subject, user_id=principal.user_id, username=principal.username,
            roles=sorted(principal.roles), org_unit_id=principal.org_unit_id,
            dealer_id=principal.dealer_id))

    # ---- org units and import --------------------------------------------------------

    async def CreateOrgUnit(self, request, context):
        d = self.deps
        unit = await org.create_org_unit(org.NewOrgUnit(
            kind=messages.PROTO_TO_KIND.get(request.kind), name=request.name,
            parent_id=request.parent_id, region_code=request.region_code,
            credit_code=request.credit_code, tier=messages.PROTO_TO_TIER.get(request.tier),
            platform_dealer_id=request.platform_dealer_id,
            division_codes=tuple(request.division_codes),
            product_lines=tuple(request.product_lines), city_code=request.city_code,
            custom_tags=tuple(request.custom_tags),
            shared_with_platform=request.shared_with_platform),
            who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids)
        return identity_pb2.CreateOrgUnitResponse(org_unit=messages.org_unit_to_proto(unit))

    async def GetOrgUnit(self, request, context):
        unit = await org.get_org_unit(request.id, who=current_principal(), uow=self.deps.uow())
        return identity_pb2.GetOrgUnitResponse(org_unit=messages.org_unit_to_proto(unit))

    async def ListOrgUnits(self, request, context):
        which = OrgUnitFilter(
            kind=_known(messages.PROTO_TO_KIND, request.kind, "kind", "org unit kind"),
            parent_id=request.parent_id,
            status=_known(messages.PROTO_TO_STATUS, request.status, "status", "status") or "",
            region_code=request.region_code.strip(), text=request.query.strip(),
            ids=_at_most(request.ids, MAX_PAGE_SIZE, "ids"))
        requested = page_request_of(request.page)
        page = await org.list_org_units(which, requested, who=current_principal(),
                                        uow=self.deps.uow())
        return identity_pb2.ListOrgUnitsResponse(
            org_units=[messages.org_unit_to_proto(u) for u in page.items],
            page=page_info_of(page))

    async def UpdateOrgUnit(self, request, context):
        d = self.deps
        new = request.org_unit
        tier = messages.PROTO_TO_TIER.get(new.tier)
        change = org.OrgUnitChange(
            org_unit_id=request.id, paths=tuple(request.update_mask.paths), name=new.name,
            parent_id=new.parent_id, credit_code=new.credit_code,
            tier=tier.value if tier else "", platform_dealer_id=new.platform_dealer_id,
            division_codes=tuple(new.division_codes), product_lines=tuple(new.product_lines),
            status=messages.PROTO_TO_STATUS.get(new.status, ""), region_code=new.region_code,
            city_code=new.city_code, shared_with_platform=new.shared_with_platform,
            reason=request.reason, expected_version=request.expected_version)
        unit = await org.update_org_unit(change, who=current_principal(), uow=d.uow(),
                                         clock=d.clock, ids=d.ids)
        return identity_pb2.UpdateOrgUnitResponse(org_unit=messages.org_unit_to_proto(unit))

    async def ImportDealers(self, request, context):
        d = self.deps
        outcome = await dealer_import.import_dealers(
            DealerFile(request.content, request.filename, request.format, request.encoding),
            request.dry_run, who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids)
        return messages.import_to_proto(outcome)

    # ---- tags and audiences ----------------------------------------------------------

    async def ListTags(self, request, context):
        page = await tags.list_tags(
            request.prefix, _known(messages.PROTO_TO_TAG_KIND, request.kind, "kind", "tag kind"),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scope_cache=self.deps.scope_cache)
        return identity_pb2.ListTagsResponse(tags=[messages.tag_to_proto(t) for t in page.items],
                                             page=page_info_of(page))

    async def _change_tags(self, request, add: bool) -> int:
        d = self.deps
        return await tags.change_dealer_tags(list(request.dealer_ids), list(request.tags), add,
                                             who=current_principal(), uow=d.uow(),
                                             clock=d.clock, ids=d.ids)

    async def AddDealerTags(self, request, context):
        return identity_pb2.AddDealerTagsResponse(
            dealers_updated=await self._change_tags(request, True))

    async def RemoveDealerTags(self, request, context):
        return identity_pb2.RemoveDealerTagsResponse(
            dealers_updated=await self._change_tags(request, False))

    async def QueryAudience(self, request, context):
        page = await tags.query_audience(
            expression_from_proto(request.expression), request.include_inactive,
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scope_cache=self.deps.scope_cache)
        return identity_pb2.QueryAudienceResponse(
            dealers=[messages.org_unit_to_proto(u) for u in page.items], page=page_info_of(page))

    # ---- users -----------------------------------------------------------------------

    async def CreateUser(self, request, context):
        d = self.deps
        user = await users.create_user(users.NewUser(
            username=request.username, password=request.password, roles=_roles(request.roles),
            org_unit_id=request.org_unit_id, display_name=request.display_name),
            who=current_principal(), uow=d.uow(), passwords=d.passwords, clock=d.clock,
            ids=d.ids)
        return identity_pb2.CreateUserResponse(user=self._user(user))

    async def GetUser(self, request, context):
        user = await users.get_user(request.id, who=current_principal(), uow=self.deps.uow())
        return identity_pb2.GetUserResponse(user=self._user(user))

    async def ListUsers(self, request, context):
        role = _known(messages.PROTO_TO_ROLE, request.role, "role", "role")
        which = UserFilter(org_unit_id=request.dealer_id or request.org_unit_id,
                           include_inactive=request.include_inactive, text=request.query,
                           role=role.value if role else "")
        page = await users.list_users(which, page_request_of(request.page), who=current_principal(),
                                      uow=self.deps.uow())
        return identity_pb2.ListUsersResponse(users=[self._user(u) for u in page.items],
                                              page=page_info_of(page))

    async def UpdateUserRoles(self, request, context):
        d = self.deps
        user = await users.update_user_roles(
            request.user_id, _roles(request.roles), request.reason, who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, revocations=d.revocations,
            expected_version=request.expected_version)
        return identity_pb2.UpdateUserRolesResponse(user=self._user(user))

    async def ChangePassword(self, request, context):
        d = self.deps
        await users.change_password(request.user_id, request.current_password,
                                    request.new_password, who=current_principal(), uow=d.uow(),
                                    passwords=d.passwords, clock=d.clock, ids=d.ids,
                                    revocations=d.revocations)
        return identity_pb2.ChangePasswordResponse()

    async def DeactivateUser(self, request, context):
        d = self.deps
        user = await users.deactivate_user(
            request.id, request.successor_user_id, request.reason, who=current_principal(),
            uow=d.uow(), clock=d.clock, ids=d.ids, revocations=d.revocations)
        return identity_pb2.DeactivateUserResponse(user=self._user(user))

    # ---- assignments -----------------------------------------------------------------

    async def AssignDealers(self, request, context):
        d = self.deps
        held = await assignments.assign_dealers(
            request.manager_user_id, list(request.dealer_ids), list(request.product_lines),
            request.reason, who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids)
        return identity_pb2.AssignDealersResponse(
            assignments=[messages.assignment_to_proto(a) for a in held])

    async def UnassignDealers(self, request, context):
        d = self.deps
        removed = await assignments.unassign_dealers(
            request.manager_user_id, list(request.dealer_ids), list(request.product_lines),
            request.reason, who=current_principal(), uow=d.uow(), clock=d.clock, ids=d.ids)
        return identity_pb2.UnassignDealersResponse(
            removed=[messages.assignment_to_proto(a) for a in removed])

    async def ListAssignments(self, request, context):
        page = await assignments.list_assignments(
            AssignmentFilter(manager_user_id=request.manager_user_id,
                             dealer_id=request.dealer_id, product_line=request.product_line),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow())
        return identity_pb2.ListAssignmentsResponse(
            assignments=[messages.assignment_to_proto(a) for a in page.items],
            page=page_info_of(page))

    async def TransferAssignments(self, request, context):
        d = self.deps
        moved = await assignments.transfer_assignments(
            request.from_manager_user_id, request.to_manager_user_id, list(request.dealer_ids),
            list(request.product_lines), request.reason, who=current_principal(), uow=d.uow(),
            clock=d.clock, ids=d.ids)
        return identity_pb2.TransferAssignmentsResponse(
            assignments=[messages.assignment_to_proto(a) for a in moved],
            transferred=len(moved))

    # ---- scope and audit -------------------------------------------------------------

    async def ResolveScope(self, request, context):
        answer = await scope.resolve_scope(
            request.user_id, request.action, request.product_line, who=current_principal(),
            uow=self.deps.uow(), scope_cache=self.deps.scope_cache)
        return messages.scope_to_proto(answer)

    async def ListAuditEvents(self, request, context):
        which = AuditFilter(
            actor=request.actor, action=request.action, target_type=request.target_type,
            target_id=request.target_id,
            occurred_after=from_timestamp(request.occurred_after)
            if request.HasField("occurred_after") else None,
            occurred_before=from_timestamp(request.occurred_before)
            if request.HasField("occurred_before") else None)
        requested = page_request_of(request.page)
        page = await audit.list_audit_events(which, requested, who=current_principal(),
                                             uow=self.deps.uow())
        return identity_pb2.ListAuditEventsResponse(
            audit_events=[messages.audit_entry_to_proto(e) for e in page.items],
            page=page_info_of(page))

    # ---- notices ---------------------------------------------------------------------

    def _shared_kw(self) -> dict:
        d = self.deps
        return dict(who=current_principal(), uow=d.uow(), clock=d.clock,
                    scope_cache=d.scope_cache)

    async def PublishNotice(self, request, context):
        new = NewNotice(
            title=request.title, body=request.body,
            category=messages.PROTO_TO_CATEGORY.get(request.category),
            must_confirm=request.must_confirm,
            in_force_until=from_timestamp(request.in_force_until)
            if request.HasField("in_force_until") else None,
            expression=expression_from_proto(request.audience)
            if request.HasField("audience") else None,
            dealer_ids=tuple(request.dealer_ids),
            attachments=tuple(NewAttachment(a.filename, a.content_type, a.content)
                              for a in request.attachments))
        notice, dealers = await notices.publish_notice(new, ids=self.deps.ids,
                                                       **self._shared_kw())
        return identity_pb2.PublishNoticeResponse(
            notice=messages.notice_to_proto(NoticeView(notice)), dealer_count=dealers)

    async def ListNotices(self, request, context):
        listing = await notices.list_notices(
            request.unread_only,
            _known(messages.PROTO_TO_CATEGORY, request.category, "category", "category"),
            page_request_of(request.page), **self._shared_kw())
        return identity_pb2.ListNoticesResponse(
            notices=[messages.notice_to_proto(view) for view in listing.page.items],
            page=page_info_of(listing.page), unread_count=listing.unread)

    async def GetNotice(self, request, context):
        view = await notices.get_notice(request.id, **self._shared_kw())
        return identity_pb2.GetNoticeResponse(notice=messages.notice_to_proto(view))

    async def GetNoticeAttachment(self, request, context):
        described, content = await notices.attachment(request.notice_id,
                                                       request.attachment_id,
                                                       **self._shared_kw())
        return identity_pb2.GetNoticeAttachmentResponse(file=files_pb2.ExportedFile(
            filename=described.filename, content_type=described.content_type,
            content=content))

    async def ConfirmNotice(self, request, context):
        view = await notices.confirm_notice(request.id, **self._shared_kw())
        return identity_pb2.ConfirmNoticeResponse(notice=messages.notice_to_proto(view))

    async def ListNoticeReceipts(self, request, context):
        page = await notices.list_receipts(
            request.notice_id,
            _known(messages.PROTO_TO_RECEIPT_STATE, request.state, "state", "receipt state"),
            page_request_of(request.page), **self._shared_kw())
        return identity_pb2.ListNoticeReceiptsResponse(
            receipts=[messages.receipt_row_to_proto(row) for row in page.items],
            page=page_info_of(page))

    async def ExportNoticeReceipts(self, request, context):
        sheet = await notices.export_receipts(request.notice_id, sheets=self.deps.sheets,
                                              **self._shared_kw())
        return identity_pb2.ExportNoticeReceiptsResponse(file=files_pb2.ExportedFile(
            filename=sheet.filename, content_type=sheet.content_type, content=sheet.content))

    async def RemindNotice(self, request, context):
        reminder = await notices.remind(request.notice_id, **self._shared_kw())
        return identity_pb2.RemindNoticeResponse(reminded_users=reminder.users,
                                                 reminded_dealers=reminder.dealers)

    # ---- material library ------------------------------------------------------------

    @staticmethod
    def _file(request) -> NewFile | None:
        if not request.HasField("file"):
            return None
        given = request.file
        return NewFile(given.filename, given.content_type, given.content, given.note)

    async def PublishMaterial(self, request, context):
        new = NewMaterial(
            title=request.title, description=request.description,
            kind=messages.PROTO_TO_MATERIAL_KIND.get(request.kind),
            expression=expression_from_proto(request.audience)
            if request.HasField("audience") else None,
            dealer_ids=tuple(request.dealer_ids), file=self._file(request))
        material, dealers = await materials.publish_material(new, ids=self.deps.ids,
                                                             **self._shared_kw())
        return identity_pb2.PublishMaterialResponse(
            material=messages.material_to_proto(material), dealer_count=dealers)

    async def AddMaterialVersion(self, request, context):
        file = self._file(request)
        if file is None:
            raise InvalidArgument.field("file", "is required")
        material = await materials.add_version(request.material_id, file,
                                               **self._shared_kw())
        return identity_pb2.AddMaterialVersionResponse(
            material=messages.material_to_proto(material))

    async def ListMaterials(self, request, context):
        page = await materials.list_materials(
            request.query, _known(messages.PROTO_TO_MATERIAL_KIND, request.kind, "kind",
                                  "material kind"),
            page_request_of(request.page), who=current_principal(), uow=self.deps.uow(),
            scope_cache=self.deps.scope_cache)
        return identity_pb2.ListMaterialsResponse(
            materials=[messages.material_to_proto(view.material, view.downloads)
                       for view in page.items], page=page_info_of(page))

    async def DownloadMaterial(self, request, context):
        version, content = await materials.download(request.material_id, request.version,
                                                    **self._shared_kw())
        return identity_pb2.DownloadMaterialResponse(
            file=files_pb2.ExportedFile(filename=version.filename,
                                        content_type=version.content_type, content=content),
            version=version.number)

    async def ListMaterialUsage(self, request, context):
        page = await materials.list_usage(request.material_id, request.dealer_id,
                                          page_request_of(request.page), who=current_principal(),
                                          uow=self.deps.uow(),
                                          scope_cache=self.deps.scope_cache)
        return identity_pb2.ListMaterialUsageResponse(
            usage=[messages.usage_to_proto(u) for u in page.items], page=page_info_of(page))
