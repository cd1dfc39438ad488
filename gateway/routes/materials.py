"""The material library (素材库): HQ and regions publish files with versions to an
audience of dealers; dealers' users find and download them; HQ and managers see which
dealers used what."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    Body,
    Caller,
    IdempotencyKey,
    Page,
    Services,
    file_response,
    idempotent,
)
from gateway.routes.identity import audience_expression
from gateway.routes.notices import decode_base64

router = APIRouter(prefix="/api/v1", tags=["materials"])

KindName = Literal["product_document", "price_policy", "training", "talk_track"]


class FileBody(Body):
    """PDF, PNG, JPEG, XLSX, DOCX, PPTX or plain text, base64-encoded, up to 5 MiB."""

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=1, max_length=200)
    content_base64: str = Field(min_length=1)
    note: str = Field(default="", max_length=500, description="what changed in this version")


class MaterialBody(Body):
    """The audience: ``audience`` (a tag expression as for /audiences/query), named
    ``dealer_ids``, or both."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    kind: KindName
    audience: dict[str, Any] | None = None
    dealer_ids: list[str] = Field(default_factory=list, max_length=5000)
    file: FileBody


def _file(body: FileBody) -> identity_pb2.NewMaterialFile:
    return identity_pb2.NewMaterialFile(
        filename=body.filename, content_type=body.content_type, note=body.note,
        content=decode_base64("file.content_base64", body.content_base64))


@router.post("/materials", status_code=201)
async def publish_material(body: MaterialBody, caller: Caller, services: Services,
                           key: IdempotencyKey) -> dict:
    """Publish a material with its first version (HQ admins to any dealers, region
    managers to their region's); the answer says how many dealers it reaches now."""
    request = identity_pb2.PublishMaterialRequest(
        title=body.title, description=body.description,
        kind=enum_number(identity_pb2.MaterialKind.DESCRIPTOR, body.kind),
        audience=audience_expression(body.audience, "audience")
        if body.audience is not None else None,
        dealer_ids=body.dealer_ids, file=_file(body.file))
    return to_json(await call(services.identity.PublishMaterial, request,
                              metadata=idempotent(key)))


@router.post("/materials/{material_id}/versions", status_code=201)
async def add_version(material_id: str, body: FileBody, caller: Caller,
                      services: Services, key: IdempotencyKey) -> dict:
    """A new file becomes the current version."""
    return to_json((await call(services.identity.AddMaterialVersion,
                               identity_pb2.AddMaterialVersionRequest(
                                   material_id=material_id, file=_file(body)),
                               metadata=idempotent(key))).material)


@router.get("/materials")
async def list_materials(caller: Caller, services: Services, page: Page, query: str = "",
                         kind: KindName | Literal[""] = "") -> dict:
    """The materials reaching the caller's dealer (dealers' users) or dealers in the
    caller's scope (HQ and managers, with their dealers' download counts), searchable by
    title and description."""
    return to_json(await call(services.identity.ListMaterials, identity_pb2.ListMaterialsRequest(
        query=query, page=page,
        kind=enum_number(identity_pb2.MaterialKind.DESCRIPTOR, kind) or 0 if kind else 0)))


@router.get("/materials/{material_id}/download", response_class=Response,
            responses={200: {"description": "the material's file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def download_material(material_id: str, caller: Caller, services: Services,
                            version: Annotated[int, Query(ge=0, le=100_000)] = 0):
    """The current version's file (or ``version``); a dealer user's download is
    recorded."""
    response = await call(services.identity.DownloadMaterial,
                          identity_pb2.DownloadMaterialRequest(material_id=material_id,
                                                               version=version))
    return file_response(response.file)


@router.get("/material-usage")
async def list_usage(caller: Caller, services: Services, page: Page, material_id: str = "",
                     dealer_id: str = "") -> dict:
    """Per material and dealer in the caller's scope: downloads, users, the newest
    version taken and when last (HQ and managers)."""
    return to_json(await call(services.identity.ListMaterialUsage,
                              identity_pb2.ListMaterialUsageRequest(
                                  material_id=material_id, dealer_id=dealer_id, page=page)))
