"""What every route module shares: the signed-in caller, request models' base, paging,
file downloads."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from qudao.common.v1 import page_pb2

from gateway.clients import Clients
from shared.context import Principal, current_principal
from shared.errors import Unauthenticated


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
