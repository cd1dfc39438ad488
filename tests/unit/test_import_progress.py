"""An import's progress is told only to the user running it, and only while it runs."""

from __future__ import annotations

from qudao.common.v1 import progress_pb2

from shared.context import Principal, principal_var, request_id_var
from shared.progress import STORING, ImportProgressServicer, tracked_import


async def ask(subject: str, request_id: str) -> progress_pb2.GetImportProgressResponse:
    token = principal_var.set(Principal(subject=subject))
    try:
        return await ImportProgressServicer().GetImportProgress(
            progress_pb2.GetImportProgressRequest(request_id=request_id), None)
    finally:
        principal_var.reset(token)


async def test_progress_is_told_to_its_owner_only_and_forgotten_when_the_import_ends():
    principal_var.set(Principal(subject="user:hq"))
    request_id_var.set("req-1")
    with tracked_import() as progress:
        progress.update(STORING, 0, 100_000)
        progress.advance(1_000)
        mine = await ask("user:hq", "req-1")
        assert (mine.found, mine.phase, mine.rows_done, mine.rows_total) == (
            True, "storing", 1_000, 100_000)
        assert not (await ask("user:someone-else", "req-1")).found
        assert not (await ask("user:hq", "req-2")).found
    assert not (await ask("user:hq", "req-1")).found
