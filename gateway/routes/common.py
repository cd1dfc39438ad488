"""What every route module shares: the signed-in caller, request models' base, paging,
file downloads."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from qudao.common.v1 import page_pb2

from gateway.clients import Clients
from shared.context import Principal, current_principal
from shared.errors import InvalidArgument, Unauthenticated


class Body(BaseModel):
    """Request bodies: unknown fields and loose types are errors, not guesses."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


# Dependencies are `async def`: a plain `def` one is run on the thread pool, a hop that
# cost ~10% of the gateway's CPU per request for work that never blocks.
async def signed_in(request: Request) -> Principal:
    principal = current_principal()
    if principal.subject == "anonymous":
        # A token that came but was refused (expired, revoked) is named as such.
        raise getattr(request.state, "auth_error", None) or Unauthenticated(
            "sign in first: missing bearer token", reason="TOKEN_MISSING")
    return principal


async def clients(request: Request) -> Clients:
    return request.app.state.clients


# Every integer in a request body ends up in a protobuf int64: bound it here, so an
# oversized number is a 422 naming its field instead of a crash.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]

# Money and quantities are bounded far above any real order and far enough below the
# int64 limit that an order's total (lines × quantity × unit price) and a dealer's sum of
# open orders cannot overflow: 500 × 1,000,000 × 10^10 fen < 2^63.
MAX_UNIT_PRICE_MINOR = 10**10       # 1亿元 a unit
MAX_AMOUNT_MINOR = 10**13           # 1000亿元: credit limits, amounts in dispute
MAX_QUANTITY = 1_000_000            # units on one line
MAX_ORDER_LINES = 500
# Negative and zero quantities reach the service, which names what they mean there.
Quantity = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
# A line number in a path ends up in a protobuf int32.
LineNo = Annotated[int, Path(ge=0, le=2**31 - 1)]

Caller = Annotated[Principal, Depends(signed_in)]
Services = Annotated[Clients, Depends(clients)]


async def page_request(
    page_size: Annotated[int, Query(ge=0, le=500)] = 0,
    page_token: Annotated[str, Query(max_length=200)] = "",
) -> page_pb2.PageRequest:
    return page_pb2.PageRequest(page_size=page_size, page_token=page_token)


Page = Annotated[page_pb2.PageRequest, Depends(page_request)]


XLSX_RESPONSES = {200: {"content": {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}}


def file_response(exported) -> Response:
    """An ExportedFile (qudao.common.v1) as a download."""
    return Response(content=exported.content, media_type=exported.content_type, headers={
        "Content-Disposition": "attachment; filename*=UTF-8''" + quote(exported.filename)})


def idempotency_key(idempotency_key: Annotated[str, Header(
        max_length=64, description="repeating a creation with the same key returns what "
                                   "the first one created")] = "") -> str:
    return idempotency_key.strip()


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


def client_reference(body_value: str, key: str, field: str) -> str:
    """The creation's client reference: the body's ``field`` or the Idempotency-Key
    header (the service keeps it, so a retry through any gateway finds the first
    result); both given must agree."""
    if body_value and key and body_value != key:
        raise InvalidArgument.field(field, "differs from the Idempotency-Key header")
    return body_value or key


def if_match(if_match: Annotated[str, Header(
        max_length=64, description='the ETag of the version being edited (``"3"``): the '
                                   'update is refused with 412 when the resource has '
                                   'changed since')] = "") -> int:
    """The version ``If-Match`` names (0: none given, update whatever is current); the
    owning service compares it in the updating transaction."""
    value = if_match.strip()
    if not value or value == "*":
        return 0
    tag = value.split(",")[0].strip()
    if not (tag.startswith('"') and tag.endswith('"') and tag[1:-1].isdigit()
            and 0 < int(tag[1:-1]) < 2**63):
        raise InvalidArgument.field("If-Match", 'give the ETag of a GET, e.g. "3"')
    return int(tag[1:-1])


IfMatch = Annotated[int, Depends(if_match)]


def tagged(response: Response, resource: dict) -> dict:
    """``resource`` (JSON of a message with a ``version``) with its ETag header set (none
    for version 0: nothing stored yet, such as a dealer account without terms)."""
    if resource.get("version"):
        response.headers["ETag"] = f'"{resource["version"]}"'
    return resource


def idempotent(key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying the Idempotency-Key to the service, which keeps the first
    answer to the key (``shared.idempotency``)."""
    return (("idempotency-key", key),) if key else ()
