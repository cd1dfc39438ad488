"""The identity service's domain objects as protobuf messages: its responses (api/), the
payloads of the events its use cases record, and the enums a request carries (back to
domain values). The one place identity's domain ↔ protobuf is written."""

from __future__ import annotations

from datetime import datetime

from qudao.common.v1 import files_pb2
from qudao.identity.v1 import events_pb2, identity_pb2

from services.identity.domain.audience import Node as AudienceNode
from services.identity.domain.dealer_import import ImportOutcome
from services.identity.domain.materials import Download, Material, MaterialKind, Usage
from services.identity.domain.model import (
    Assignment,
    AssignmentChange,
    AuditEntry,
    OrgUnit,
    Session,
    TagCount,
    TagKind,
    Tokens,
    User,
)
from services.identity.domain.notices import (
    Category,
    Notice,
    NoticeView,
    Receipt,
    ReceiptRow,
    ReceiptState,
)
from services.identity.domain.rules import OrgKind, Role, ScopeAnswer, Tier
from shared.convert import to_timestamp

ROLE_TO_PROTO = {role: identity_pb2.Role.Value(
    "ROLE_SERVICE_ERP" if role == Role.ERP else f"ROLE_{role.name}") for role in Role}
PROTO_TO_ROLE = {value: role for role, value in ROLE_TO_PROTO.items()}
KIND_TO_PROTO = {OrgKind.HQ: identity_pb2.ORG_UNIT_KIND_HQ,
                 OrgKind.REGION: identity_pb2.ORG_UNIT_KIND_REGION,
                 OrgKind.DEALER: identity_pb2.ORG_UNIT_KIND_DEALER}
PROTO_TO_KIND = {value: kind for kind, value in KIND_TO_PROTO.items()}
TIER_TO_PROTO = {Tier.PLATFORM: identity_pb2.DEALER_TIER_PLATFORM,
                 Tier.ONE: identity_pb2.DEALER_TIER_ONE, Tier.TWO: identity_pb2.DEALER_TIER_TWO}
PROTO_TO_TIER = {value: tier for tier, value in TIER_TO_PROTO.items()}
STATUS_TO_PROTO = {"active": identity_pb2.ORG_UNIT_STATUS_ACTIVE,
                   "suspended": identity_pb2.ORG_UNIT_STATUS_SUSPENDED,
                   "closed": identity_pb2.ORG_UNIT_STATUS_CLOSED}
PROTO_TO_STATUS = {value: name for name, value in STATUS_TO_PROTO.items()}
TAG_KIND_TO_PROTO = {TagKind.DERIVED: identity_pb2.TAG_KIND_DERIVED,
                     TagKind.CUSTOM: identity_pb2.TAG_KIND_CUSTOM}
PROTO_TO_TAG_KIND = {value: kind for kind, value in TAG_KIND_TO_PROTO.items()}
CHANGE_TO_PROTO = {AssignmentChange.ASSIGNED: events_pb2.ASSIGNMENT_CHANGE_KIND_ASSIGNED,
                   AssignmentChange.UNASSIGNED: events_pb2.ASSIGNMENT_CHANGE_KIND_UNASSIGNED,
                   AssignmentChange.TRANSFERRED: events_pb2.ASSIGNMENT_CHANGE_KIND_TRANSFERRED}


# ---- responses -------------------------------------------------------------------------

def org_unit_to_proto(unit: OrgUnit) -> identity_pb2.OrgUnit:
    return identity_pb2.OrgUnit(
        id=unit.id, kind=KIND_TO_PROTO[unit.kind], name=unit.name,
        parent_id=unit.parent_id or "", credit_code=unit.credit_code or "",
        tier=TIER_TO_PROTO.get(unit.tier, identity_pb2.DEALER_TIER_UNSPECIFIED),
        platform_dealer_id=unit.platform_dealer_id or "",
        division_codes=unit.division_codes, product_lines=unit.product_lines,
        status=STATUS_TO_PROTO.get(unit.status, identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED),
        region_code=unit.region_code, derived_tags=unit.derived_tags,
        custom_tags=unit.custom_tags, shared_with_platform=unit.shared_with_platform,
        city_code=unit.city_code, created_at=to_timestamp(unit.created_at),
        updated_at=to_timestamp(unit.updated_at), version=unit.version)


def user_to_proto(user: User, now: datetime) -> identity_pb2.User:
    """``locked_until`` only while the lock lasts (as of ``now``)."""
    locked = user.locked_until if user.login_state.is_locked(now) else None
    return identity_pb2.User(
        id=user.id, username=user.username, display_name=user.display_name,
        roles=[ROLE_TO_PROTO[Role(role)] for role in user.roles], org_unit_id=user.org_unit_id,
        dealer_id=user.dealer_id, active=user.active, created_at=to_timestamp(user.created_at),
        last_login_at=to_timestamp(user.last_login_at), locked_until=to_timestamp(locked),
        deactivated_at=to_timestamp(user.deactivated_at), version=user.version)


def assignment_to_proto(assignment: Assignment) -> identity_pb2.Assignment:
    return identity_pb2.Assignment(
        manager_user_id=assignment.manager_user_id, dealer_id=assignment.dealer_id,
        product_line=assignment.product_line, assigned_by=assignment.assigned_by,
        assigned_at=to_timestamp(assignment.assigned_at))


def audit_entry_to_proto(entry: AuditEntry) -> identity_pb2.AuditEvent:
    return identity_pb2.AuditEvent(
        id=entry.id, actor=entry.actor, action=entry.action, target_type=entry.target_type,
        target_id=entry.target_id, before_json=entry.before_json, after_json=entry.after_json,
        reason=entry.reason, request_id=entry.request_id,
        occurred_at=to_timestamp(entry.occurred_at))


def tag_to_proto(tag: TagCount) -> identity_pb2.Tag:
    return identity_pb2.Tag(name=tag.name, kind=TAG_KIND_TO_PROTO[tag.kind],
                            dealer_count=tag.dealer_count)


def scope_to_proto(scope: ScopeAnswer) -> identity_pb2.ResolveScopeResponse:
    return identity_pb2.ResolveScopeResponse(all_dealers=scope.all_dealers,
                                             dealer_ids=scope.ordered_ids)


def login_to_proto(session: Session, now: datetime) -> identity_pb2.LoginResponse:
    return identity_pb2.LoginResponse(
        access_token=session.tokens.access_token, refresh_token=session.tokens.refresh_token,
        expires_in_seconds=session.tokens.expires_in_seconds,
        user=user_to_proto(session.user, now))


def refresh_to_proto(tokens: Tokens) -> identity_pb2.RefreshTokenResponse:
    return identity_pb2.RefreshTokenResponse(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token,
        expires_in_seconds=tokens.expires_in_seconds)


def import_to_proto(outcome: ImportOutcome) -> identity_pb2.ImportDealersResponse:
    return identity_pb2.ImportDealersResponse(
        accepted=outcome.accepted, created=outcome.created, updated=outcome.updated,
        unchanged=outcome.unchanged,
        errors=[files_pb2.RowError(row_number=p.row_number, column=p.column, code=p.code,
                                   message_zh=p.message_zh, message_en=p.message_en,
                                   value=p.value) for p in outcome.problems])


# ---- event payloads --------------------------------------------------------------------

def org_unit_created(unit: OrgUnit) -> events_pb2.OrgUnitCreated:
    return events_pb2.OrgUnitCreated(org_unit=org_unit_to_proto(unit))


def org_unit_updated(unit: OrgUnit, previous: OrgUnit,
                     changed: list[str]) -> events_pb2.OrgUnitUpdated:
    return events_pb2.OrgUnitUpdated(org_unit=org_unit_to_proto(unit),
                                     previous=org_unit_to_proto(previous),
                                     changed_fields=changed)


def tags_changed(dealer: OrgUnit, old_derived: tuple[str, ...],
                 old_custom: tuple[str, ...]) -> events_pb2.TagsChanged:
    old = set(old_derived) | set(old_custom)
    new = set(dealer.derived_tags) | set(dealer.custom_tags)
    return events_pb2.TagsChanged(dealer_id=dealer.id, added=sorted(new - old),
                                  removed=sorted(old - new), derived_tags=dealer.derived_tags,
                                  custom_tags=dealer.custom_tags)


def user_created(user: User, now: datetime) -> events_pb2.UserCreated:
    return events_pb2.UserCreated(user=user_to_proto(user, now))


def user_roles_changed(user: User, previous_roles: tuple[str, ...]
                       ) -> events_pb2.UserRolesChanged:
    return events_pb2.UserRolesChanged(
        user_id=user.id, previous_roles=[ROLE_TO_PROTO[Role(r)] for r in previous_roles],
        roles=[ROLE_TO_PROTO[Role(r)] for r in user.roles], org_unit_id=user.org_unit_id,
        dealer_id=user.dealer_id)


def user_logged_in(user: User) -> events_pb2.UserLoggedIn:
    return events_pb2.UserLoggedIn(user_id=user.id, dealer_id=user.dealer_id or "",
                                   logged_in_at=to_timestamp(user.last_login_at))


def user_password_changed(user: User) -> events_pb2.UserPasswordChanged:
    return events_pb2.UserPasswordChanged(user_id=user.id)


def user_deactivated(user: User, successor_id: str, reason: str,
                     now: datetime) -> events_pb2.UserDeactivated:
    return events_pb2.UserDeactivated(user=user_to_proto(user, now),
                                      successor_user_id=successor_id, reason=reason)


def tokens_issued_before(user_id: str, moment: datetime,
                         reason: str) -> events_pb2.SessionRevoked:
    """Every access token of the user issued before ``moment`` is refused."""
    return events_pb2.SessionRevoked(user_id=user_id, reason=reason,
                                     issued_before=to_timestamp(moment))


def token_signed_out(user_id: str, token_id: str) -> events_pb2.SessionRevoked:
    return events_pb2.SessionRevoked(user_id=user_id, token_id=token_id, reason="logout")


def assignment_changed(kind: AssignmentChange, *, added: list[Assignment] = (),
                       removed: list[Assignment] = (), from_manager_user_id: str = "",
                       to_manager_user_id: str = "",
                       reason: str = "") -> events_pb2.AssignmentChanged:
    return events_pb2.AssignmentChanged(
        kind=CHANGE_TO_PROTO[kind], added=[assignment_to_proto(a) for a in added],
        removed=[assignment_to_proto(a) for a in removed],
        from_manager_user_id=from_manager_user_id, to_manager_user_id=to_manager_user_id,
        reason=reason)


# ---- notices ---------------------------------------------------------------------------

CATEGORY_TO_PROTO = {category: identity_pb2.NoticeCategory.Value(
    f"NOTICE_CATEGORY_{category.name}") for category in Category}
PROTO_TO_CATEGORY = {value: category for category, value in CATEGORY_TO_PROTO.items()}
RECEIPT_STATE_TO_PROTO = {state: identity_pb2.ReceiptState.Value(
    f"RECEIPT_STATE_{state.name}") for state in ReceiptState}
PROTO_TO_RECEIPT_STATE = {value: state for state, value in RECEIPT_STATE_TO_PROTO.items()}


def expression_to_proto(node: AudienceNode) -> identity_pb2.AudienceExpression:
    if node.op == "term":
        term = identity_pb2.AudienceTerm()
        if node.kind == "tier":
            term.tier = TIER_TO_PROTO[Tier(node.value)]
        else:
            setattr(term, node.kind, node.value)
        return identity_pb2.AudienceExpression(term=term)
    if node.op == "not":
        return identity_pb2.AudienceExpression(negate=expression_to_proto(node.children[0]))
    operands = identity_pb2.AudienceExpressionList(
        expressions=[expression_to_proto(child) for child in node.children])
    if node.op == "all":
        return identity_pb2.AudienceExpression(all_of=operands)
    return identity_pb2.AudienceExpression(any_of=operands)


def notice_to_proto(view: NoticeView) -> identity_pb2.Notice:
    notice = view.notice
    return identity_pb2.Notice(
        id=notice.id, title=notice.title, body=notice.body,
        category=CATEGORY_TO_PROTO[notice.category], must_confirm=notice.must_confirm,
        in_force_until=to_timestamp(notice.in_force_until),
        audience=expression_to_proto(notice.audience.expression)
        if notice.audience.expression else None,
        dealer_ids=notice.audience.dealer_ids,
        attachments=[identity_pb2.NoticeAttachment(
            id=a.id, filename=a.filename, content_type=a.content_type, size_bytes=a.size_bytes)
            for a in notice.attachments],
        published_by=notice.published_by, published_at=to_timestamp(notice.published_at),
        read_at=to_timestamp(view.receipt.read_at if view.receipt else None),
        confirmed_at=to_timestamp(view.receipt.confirmed_at if view.receipt else None),
        recipient_count=view.recipients, read_count=view.read,
        confirmed_count=view.confirmed)


def receipt_row_to_proto(row: ReceiptRow) -> identity_pb2.NoticeReceipt:
    return identity_pb2.NoticeReceipt(
        dealer_id=row.dealer_id, dealer_name=row.dealer_name, user_id=row.user_id,
        username=row.username, display_name=row.display_name,
        state=RECEIPT_STATE_TO_PROTO[row.state], read_at=to_timestamp(row.read_at),
        confirmed_at=to_timestamp(row.confirmed_at))


def notice_published(notice: Notice) -> events_pb2.NoticePublished:
    return events_pb2.NoticePublished(notice=notice_to_proto(NoticeView(notice)),
                                      dealer_ids=sorted(notice.reached_dealer_ids))


def notice_read(receipt: Receipt) -> events_pb2.NoticeRead:
    return events_pb2.NoticeRead(notice_id=receipt.notice_id, dealer_id=receipt.dealer_id,
                                 user_id=receipt.user_id, read_at=to_timestamp(receipt.read_at))


def notice_confirmed(receipt: Receipt) -> events_pb2.NoticeConfirmed:
    return events_pb2.NoticeConfirmed(
        notice_id=receipt.notice_id, dealer_id=receipt.dealer_id, user_id=receipt.user_id,
        confirmed_at=to_timestamp(receipt.confirmed_at))


def notice_reminded(notice: Notice, rows: list[ReceiptRow],
                    reminded_by: str) -> events_pb2.NoticeReminded:
    return events_pb2.NoticeReminded(
        notice_id=notice.id, title=notice.title, reminded_by=reminded_by,
        recipients=[events_pb2.NoticeRecipient(dealer_id=row.dealer_id, user_id=row.user_id)
                    for row in rows])


# ---- materials -------------------------------------------------------------------------

MATERIAL_KIND_TO_PROTO = {kind: identity_pb2.MaterialKind.Value(
    f"MATERIAL_KIND_{kind.name}") for kind in MaterialKind}
PROTO_TO_MATERIAL_KIND = {value: kind for kind, value in MATERIAL_KIND_TO_PROTO.items()}


def material_to_proto(material: Material, downloads: int = 0) -> identity_pb2.Material:
    return identity_pb2.Material(
        id=material.id, title=material.title, description=material.description,
        kind=MATERIAL_KIND_TO_PROTO[material.kind],
        audience=expression_to_proto(material.audience.expression)
        if material.audience.expression else None,
        dealer_ids=material.audience.dealer_ids,
        versions=[identity_pb2.MaterialVersion(
            number=v.number, filename=v.filename, content_type=v.content_type,
            size_bytes=v.size_bytes, note=v.note, published_by=v.published_by,
            published_at=to_timestamp(v.published_at)) for v in material.versions],
        published_by=material.published_by,
        updated_at=to_timestamp(material.current.published_at), download_count=downloads)


def usage_to_proto(usage: Usage) -> identity_pb2.MaterialUsage:
    return identity_pb2.MaterialUsage(
        material_id=usage.material_id, material_title=usage.material_title,
        dealer_id=usage.dealer_id, dealer_name=usage.dealer_name, downloads=usage.downloads,
        users=usage.users, latest_version=usage.latest_version,
        last_downloaded_at=to_timestamp(usage.last_downloaded_at))


def material_published(material: Material) -> events_pb2.MaterialPublished:
    return events_pb2.MaterialPublished(material=material_to_proto(material))


def material_downloaded(download: Download) -> events_pb2.MaterialDownloaded:
    return events_pb2.MaterialDownloaded(
        material_id=download.material_id, version=download.version,
        dealer_id=download.dealer_id, user_id=download.user_id,
        downloaded_at=to_timestamp(download.downloaded_at))
