"""Receiving a sell-through file and reading uploads back: the file is stored (in
chunks, in the database, so any replica can validate it) and the upload queued in one
transaction; validation runs in the background (usecases/validate.py)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

from services.flow.domain.columns import FlowColumn
from services.flow.domain.model import (
    Encoding,
    FileFormat,
    MappingEntry,
    Period,
    Upload,
    UploadFilter,
    UploadStatus,
)
from services.flow.domain.rules import replacement_problem
from services.flow.usecases.ports import Deps, FlowUnitOfWork
from shared.context import Principal
from shared.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, collect
from shared.pagination import Page, PageRequest
from shared.scope import Scopes

SOURCE = "source"
ERRORS = "errors"
REPORT = "report"
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadRequest:
    dealer_id: str
    filename: str
    format: FileFormat
    encoding: Encoding
    mapping: tuple[MappingEntry, ...]
    header_row: int
    sheet_name: str
    size_bytes: int
    sha256: str
    period_start: str
    period_end: str
    client_request_id: str
    replaces_upload_id: str


def _day(text: str, field: str, problems: list[FieldViolation]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(FieldViolation(field, f"{text!r} is not a date (YYYY-MM-DD)"))
        return None


def check_request(request: UploadRequest, max_bytes: int) -> Period:
    problems: list[FieldViolation] = []
    if not request.dealer_id:
        problems.append(FieldViolation("metadata.dealer_id", "is required"))
    if len(request.filename) > 255:
        problems.append(FieldViolation("metadata.filename", "at most 255 characters"))
    if request.size_bytes < 0 or request.size_bytes > max_bytes:
        problems.append(FieldViolation("metadata.size_bytes", f"must be 0..{max_bytes}"))
    if request.sha256 and (len(request.sha256) != 64
                           or any(c not in "0123456789abcdef" for c in request.sha256.lower())):
        problems.append(FieldViolation("metadata.sha256", "is not a hex SHA-256"))
    if len(request.client_request_id) > 100:
        problems.append(FieldViolation("metadata.client_request_id", "at most 100 characters"))
    if request.header_row < 0:
        problems.append(FieldViolation("metadata.header_row", "must not be negative"))
    start = _day(request.period_start, "metadata.period_start", problems)
    end = _day(request.period_end, "metadata.period_end", problems)
    if start and end and end < start:
        problems.append(FieldViolation("metadata.period_end", "is before period_start"))
    for index, entry in enumerate(request.mapping):
        if not entry.header and entry.position <= 0:
            problems.append(FieldViolation(f"metadata.mapping[{index}]",
                                           "give the header text or the column position"))
    collect(problems)
    return Period(start, end)


async def receive_upload(request: UploadRequest, chunks: AsyncIterator[bytes], *,
                         who: Principal, deps: Deps) -> Upload:
    """Store the streamed file and queue it. A repeat with the same client_request_id
    returns the first upload; nothing is kept of a stream that breaks off, is longer
    than announced or fails its checksum."""
    period = check_request(request, deps.options.max_file_bytes)
    scope = await deps.scopes.resolve(who, "flow.upload")
    scope.require(request.dealer_id)
    uow = deps.uow()
    if request.client_request_id:
        async with uow.read():
            earlier = await uow.uploads.by_client_request(request.dealer_id,
                                                          request.client_request_id)
        if earlier is not None:
            async for _ in chunks:  # drain the stream; the first upload stands
                pass
            return earlier
    upload_id = deps.ids.new_id()
    # The stream is spooled to local scratch first, so the database's write turn is
    # taken only for the quick copy at the end, never while a client is sending.
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK_BYTES) as spool:
        digest = hashlib.sha256()
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > deps.options.max_file_bytes:
                raise InvalidArgument.field("file", f"the file exceeds "
                                                    f"{deps.options.max_file_bytes} bytes")
            digest.update(chunk)
            spool.write(chunk)
        if size == 0:
            raise InvalidArgument.field("file", "the file is empty")
        if request.size_bytes and size != request.size_bytes:
            raise InvalidArgument.field("metadata.size_bytes", (
                f"announced {request.size_bytes} bytes, received {size}: the stream was "
                f"cut short" if size < request.size_bytes else
                f"announced {request.size_bytes} bytes, received {size}"))
        sha = digest.hexdigest()
        if request.sha256 and request.sha256.lower() != sha:
            raise InvalidArgument.field("metadata.sha256", "the file's SHA-256 differs: it "
                                                           "was damaged on the way")
        spool.seek(0)
        async with uow:
            if request.replaces_upload_id:
                previous = await uow.uploads.get(request.replaces_upload_id)
                problem = replacement_problem(previous, request.dealer_id,
                                              await uow.periods.closed_through())
                if problem:
                    raise FailedPrecondition(f"upload {request.replaces_upload_id} cannot be "
                                             f"replaced: {problem}", reason="NOT_REPLACEABLE")
            seq = 0
            while data := spool.read(CHUNK_BYTES):
                await uow.blobs.put_chunk(upload_id, SOURCE, seq, data)
                seq += 1
            upload = Upload(
                id=upload_id, dealer_id=request.dealer_id, filename=request.filename,
                format=request.format, encoding=request.encoding, status=UploadStatus.QUEUED,
                size_bytes=size, sha256=sha, period=period, uploaded_by=who.subject,
                uploaded_at=deps.clock.now(), client_request_id=request.client_request_id,
                header_row=request.header_row, sheet_name=request.sheet_name,
                mapping=request.mapping, replaces_upload_id=request.replaces_upload_id)
            await uow.uploads.add(upload)
            await uow.commit()
    deps.wake()
    return upload


async def _visible(upload_id: str, who: Principal, uow: FlowUnitOfWork,
                   scopes: Scopes) -> Upload:
    scope = await scopes.resolve(who, "flow.read")
    async with uow.read():
        upload = await uow.uploads.get(upload_id)
    if upload is None or not scope.allows(upload.dealer_id):
        raise NotFound(f"upload {upload_id} not found")
    return upload


async def get_upload(upload_id: str, *, who: Principal, uow: FlowUnitOfWork,
                     scopes: Scopes) -> Upload:
    return await _visible(upload_id, who, uow, scopes)


async def list_uploads(dealer_id: str, which: UploadFilter, page: PageRequest, *,
                       who: Principal, uow: FlowUnitOfWork, scopes: Scopes) -> Page[Upload]:
    scope = await scopes.resolve(who, "flow.read")
    if dealer_id:
        if not scope.allows(dealer_id):
            return Page([])
        dealers = frozenset({dealer_id})
    else:
        dealers = None if scope.all_dealers else scope.dealer_ids
    filtered = UploadFilter(dealers, which.statuses, which.uploaded_after,
                            which.uploaded_before)
    async with uow.read():
        return await uow.uploads.page(filtered, page)


async def get_mapping(dealer_id: str, *, who: Principal, uow: FlowUnitOfWork,
                      scopes: Scopes) -> dict[str, FlowColumn]:
    (await scopes.resolve(who, "flow.read")).require(dealer_id)
    async with uow.read():
        return await uow.mappings.get(dealer_id)


async def set_mapping(dealer_id: str, entries: tuple[MappingEntry, ...], *, who: Principal,
                      deps: Deps) -> dict[str, FlowColumn]:
    """Replace the dealer's saved mapping (header text → column)."""
    from services.flow.domain.columns import header_key

    (await deps.scopes.resolve(who, "flow.upload")).require(dealer_id)
    problems = [FieldViolation(f"mapping[{i}].header", "is required")
                for i, entry in enumerate(entries) if not entry.header.strip()]
    collect(problems)
    mapping = {header_key(entry.header): entry.column for entry in entries}
    uow = deps.uow()
    async with uow:
        await uow.mappings.save(dealer_id, mapping, deps.clock.now())
        await uow.commit()
    return mapping


def require_finished(upload: Upload, what: str) -> None:
    if not upload.status.finished:
        raise FailedPrecondition(f"upload {upload.id} is still being validated: {what} "
                                 "is ready once it finishes", reason="NOT_FINISHED")
