"""Notices (通知公告) with read receipts: HQ and regions publish, dealers' users read and
confirm, HQ and managers follow who has read, export it and remind the others."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    XLSX_RESPONSES,
    Body,
    Caller,
    IdempotencyKey,
    Page,
    Services,
    file_response,
    idempotent,
)
from gateway.routes.identity import audience_expression
from shared.convert import to_timestamp
from shared.errors import FieldViolation, InvalidArgument, collect

router = APIRouter(prefix="/api/v1", tags=["notices"])

CategoryName = Literal["policy", "product", "price", "holiday", "other"]
StateName = Literal["unread", "read", "confirmed"]


class AttachmentBody(Body):
    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1)


class NoticeBody(Body):
    """The audience: ``audience`` (a tag expression as for /audiences/query), named
    ``dealer_ids``, or both. Attachments go base64-encoded (PDF, PNG, JPEG, XLSX, DOCX,
    PPTX, plain text; 5 MiB each, 7 MiB together)."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    category: CategoryName
    must_confirm: bool = False
    in_force_until: Annotated[datetime | None, Field(strict=False)] = Field(
        default=None, description="RFC 3339; absent: in force until withdrawn")
    audience: dict[str, Any] | None = None
    dealer_ids: list[str] = Field(default_factory=list, max_length=5000)
    attachments: list[AttachmentBody] = Field(default_factory=list, max_length=10)


def decode_base64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument.field(field, "is not base64") from None


def _attachments(given: list[AttachmentBody]) -> list[identity_pb2.NewNoticeAttachment]:
    decoded, problems = [], []
    for index, attachment in enumerate(given):
        field = f"attachments[{index}].content_base64"
        try:
            content = decode_base64(field, attachment.content_base64)
        except InvalidArgument:
            problems.append(FieldViolation(field, "is not base64"))
            continue
        decoded.append(identity_pb2.NewNoticeAttachment(
            filename=attachment.filename, content_type=attachment.content_type,
            content=content))
    collect(problems)
    return decoded


@router.post("/notices", status_code=201)
async def publish_notice(body: NoticeBody, caller: Caller, services: Services,
                         key: IdempotencyKey) -> dict:
    """Publish a notice (HQ admins to any dealers, region managers to their region's);
    the answer says how many dealers it reaches now."""
    moment = body.in_force_until
    if moment is not None and moment.tzinfo is None:
        raise InvalidArgument.field("in_force_until", "needs a time zone (RFC 3339)")
    request = identity_pb2.PublishNoticeRequest(
        title=body.title, body=body.body,
        category=enum_number(identity_pb2.NoticeCategory.DESCRIPTOR, body.category),
        must_confirm=body.must_confirm,
        in_force_until=to_timestamp(moment.astimezone(UTC)) if moment else None,
        audience=audience_expression(body.audience, "audience")
        if body.audience is not None else None,
        dealer_ids=body.dealer_ids, attachments=_attachments(body.attachments))
    return to_json(await call(services.identity.PublishNotice, request,
                              metadata=idempotent(key)))


@router.get("/notices")
async def list_notices(caller: Caller, services: Services, page: Page,
                       unread_only: bool = False, category: CategoryName | Literal[""] = "",
                       ) -> dict:
    """A dealer's users: their notices, newest first, with ``read_at`` unset while unread
    and ``unread_count``. HQ and managers: the notices reaching dealers in their scope,
    with how many of those dealers' users have read and confirmed."""
    return to_json(await call(services.identity.ListNotices, identity_pb2.ListNoticesRequest(
        unread_only=unread_only, page=page,
        category=enum_number(identity_pb2.NoticeCategory.DESCRIPTOR, category) or 0
        if category else 0)))


@router.get("/notices/{notice_id}")
async def get_notice(notice_id: str, caller: Caller, services: Services) -> dict:
    """The notice; a dealer user's first read of it is recorded."""
    return to_json((await call(services.identity.GetNotice,
                               identity_pb2.GetNoticeRequest(id=notice_id))).notice)


@router.post("/notices/{notice_id}/confirm")
async def confirm_notice(notice_id: str, caller: Caller, services: Services) -> dict:
    """A dealer's user confirms a must-confirm notice (确认阅读)."""
    return to_json((await call(services.identity.ConfirmNotice,
                               identity_pb2.ConfirmNoticeRequest(id=notice_id))).notice)


@router.get("/notices/{notice_id}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"description": "the attached file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def download_attachment(notice_id: str, attachment_id: str, caller: Caller,
                              services: Services):
    response = await call(services.identity.GetNoticeAttachment,
                          identity_pb2.GetNoticeAttachmentRequest(
                              notice_id=notice_id, attachment_id=attachment_id))
    return file_response(response.file)


@router.get("/notices/{notice_id}/receipts")
async def list_receipts(notice_id: str, caller: Caller, services: Services, page: Page,
                        state: StateName | Literal[""] = "") -> dict:
    """Per dealer user in the caller's scope: unread, read or confirmed (HQ and managers)."""
    return to_json(await call(services.identity.ListNoticeReceipts,
                              identity_pb2.ListNoticeReceiptsRequest(
                                  notice_id=notice_id, page=page,
                                  state=enum_number(identity_pb2.ReceiptState.DESCRIPTOR,
                                                    state) or 0 if state else 0)))


@router.get("/notices/{notice_id}/receipts/export", responses=XLSX_RESPONSES)
async def export_receipts(notice_id: str, caller: Caller, services: Services):
    """The receipts as XLSX (cells that a spreadsheet would run start with ')."""
    response = await call(services.identity.ExportNoticeReceipts,
                          identity_pb2.ExportNoticeReceiptsRequest(notice_id=notice_id))
    return file_response(response.file)


@router.post("/notices/{notice_id}/remind")
async def remind(notice_id: str, caller: Caller, services: Services) -> dict:
    """Remind the users in scope who have not read (or not confirmed) the notice."""
    return to_json(await call(services.identity.RemindNotice,
                              identity_pb2.RemindNoticeRequest(notice_id=notice_id)))
