"""Import jobs: a large file import answers 202 with a job; its state and result are
read here by the user who started it (gateway/import_jobs.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.routes.common import Caller

router = APIRouter(prefix="/api/v1/import-jobs", tags=["imports"])


@router.get("/{job_id}")
async def get_import_job(job_id: str, request: Request, caller: Caller) -> dict:
    """The job: ``state`` (queued, running, succeeded, failed, cancelled); while it runs,
    ``progress`` once the service reports it (``phase``: reading, validating, storing;
    ``rows_done`` of ``rows_total``); and when it has ended either ``result`` (the
    import's answer, with every row error) or ``problem`` (why the file was refused, as
    problem+json)."""
    return request.app.state.import_jobs.get(job_id, caller).view()


@router.delete("/{job_id}")
async def cancel_import_job(job_id: str, request: Request, caller: Caller) -> dict:
    """Cancel a queued or running job (its parsing stops at once); an ended job is left
    as it is."""
    return (await request.app.state.import_jobs.cancel(job_id, caller)).view()
