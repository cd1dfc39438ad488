"""Import files arriving at the gateway: either the raw request body (``Content-Type:
text/csv`` or the XLSX type — what scripts and curl send) or a browser form upload
(``multipart/form-data`` with the file in the ``file`` field). Either way the file is
read with a size limit and handed on with its name and format."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from qudao.common.v1 import files_pb2
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from shared.errors import InvalidArgument

MAX_IMPORT_BYTES = 10 * 1024 * 1024
# Flow files run to a million rows: streamed through, never read whole here.
MAX_FLOW_FILE_BYTES = 512 * 1024 * 1024
# Form framing (boundaries, part headers) a browser upload adds around the file.
FORM_ALLOWANCE_BYTES = 64 * 1024
# Routes that stream their body on, with a body limit of their own (sell-through files).
STREAMED_UPLOAD_LIMITS = {"/api/v1/flow/uploads": MAX_FLOW_FILE_BYTES + FORM_ALLOWANCE_BYTES}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# openapi_extra for every import route.
IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}


@dataclass(frozen=True)
class Upload:
    content: bytes
    filename: str
    format: int  # qudao.common.v1.FileFormat


def format_of(content_type: str) -> int:
    if "spreadsheetml" in content_type:
        return files_pb2.FILE_FORMAT_XLSX
    if "csv" in content_type:
        return files_pb2.FILE_FORMAT_CSV
    return files_pb2.FILE_FORMAT_UNSPECIFIED


def _too_large() -> HTTPException:
    return HTTPException(413, f"the file exceeds {MAX_IMPORT_BYTES} bytes")


async def read_upload(request: Request, filename: str = "") -> Upload:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES + FORM_ALLOWANCE_BYTES:
        raise _too_large()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidArgument.field("file", "send the file in the form field 'file'")
            content = await upload.read(MAX_IMPORT_BYTES + 1)
            if len(content) > MAX_IMPORT_BYTES:
                raise _too_large()
            return Upload(content, filename or upload.filename or "",
                          format_of(upload.content_type or ""))
    content = bytearray()
    async for chunk in request.stream():
        content += chunk
        if len(content) > MAX_IMPORT_BYTES:
            raise _too_large()
    return Upload(bytes(content), filename, format_of(content_type))
