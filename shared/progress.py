"""How far the file imports running in this process have come, so that the gateway's
import job can say so while it waits (gateway/import_jobs.py polls GetImportProgress).

An import is known by the request id of the call running it and belongs to the caller:
another user asking for it is told there is no such import. It is forgotten when the
call ends (the job then has the result itself)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from qudao.common.v1 import progress_pb2, progress_pb2_grpc

from shared.context import current_principal, current_request_id

READING, VALIDATING, STORING = "reading", "validating", "storing"


@dataclass
class ImportProgress:
    owner: str
    phase: str = READING
    rows_done: int = 0
    rows_total: int = 0

    def update(self, phase: str, rows_done: int = 0, rows_total: int | None = None) -> None:
        self.phase, self.rows_done = phase, rows_done
        if rows_total is not None:
            self.rows_total = rows_total

    def advance(self, rows: int) -> None:
        self.rows_done = min(self.rows_done + rows, self.rows_total)


_running: dict[str, ImportProgress] = {}


@contextlib.contextmanager
def tracked_import() -> Iterator[ImportProgress]:
    """The progress of the import this call runs, known while the block runs."""
    request_id = current_request_id()
    progress = ImportProgress(owner=current_principal().subject)
    _running[request_id] = progress
    try:
        yield progress
    finally:
        if _running.get(request_id) is progress:
            del _running[request_id]


class ImportProgressServicer(progress_pb2_grpc.ImportProgressServiceServicer):
    async def GetImportProgress(self, request, context):
        progress = _running.get(request.request_id)
        if progress is None or progress.owner != current_principal().subject:
            return progress_pb2.GetImportProgressResponse(found=False)
        return progress_pb2.GetImportProgressResponse(
            found=True, phase=progress.phase, rows_done=progress.rows_done,
            rows_total=progress.rows_total)
