"""File imports as jobs, so that no request waits on a large one.

An import request whose file is larger than ``SYNC_IMPORT_BYTES``, or that asks with
``Prefer: respond-async``, is answered at once with ``202 Accepted``, the job and its
``Location`` (``/api/v1/import-jobs/{id}``); the import runs in the background with a
deadline of ``JOB_DEADLINE_SECONDS`` and its result (the import's answer with every row
error, or the problem that refused the file) is fetched later from that location.
While it runs, the job shows the import's ``progress`` (phase, rows done of rows total),
asked of the service every ``PROGRESS_SECONDS`` (shared/progress.py). ``DELETE`` on it
cancels the job, which cancels the service's call and kills its parsing
process. Smaller files are imported within the request, as the API always promised, and
that call is cancelled when the client goes away.

Jobs live in the gateway replica that accepted them, for ``KEEP_SECONDS`` after they end,
and only their owner (the user who started them) sees them; a gateway restart forgets
them (the import either finished in the service or was cancelled with the call)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse
from google.protobuf.message import Message
from qudao.common.v1 import progress_pb2, progress_pb2_grpc

from gateway.clients import CALL_TIMEOUT_SECONDS, call
from gateway.problems import from_rpc_error
from gateway.protojson import to_json
from gateway.uploads import Upload
from shared.context import Principal, current_request_id
from shared.errors import DomainError, NotFound

SYNC_IMPORT_BYTES = 1024 * 1024
JOB_DEADLINE_SECONDS = 15 * 60.0
KEEP_SECONDS = 3600.0
# Imports running at once in this gateway (more wait, queued) and unfinished jobs per user.
MAX_RUNNING = 2
MAX_UNFINISHED_PER_USER = 4
PROGRESS_SECONDS = 1.0
# The service that runs each kind of import (and answers its progress).
SERVICE_OF_KIND = {"products": "order", "dealers": "identity", "customers": "registration",
                   "aliases": "registration", "leads": "registration",
                   "targets": "incentive"}

# The service's call for an import, given its deadline in seconds.
ImportCall = Callable[[float], Awaitable[Message]]


class TooManyImports(DomainError):
    code = "RESOURCE_EXHAUSTED"
    reason = "TOO_MANY_IMPORTS"


@dataclass
class Job:
    id: str
    kind: str
    owner: str
    size_bytes: int
    created_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued → running → succeeded | failed | cancelled
    finished_at: float | None = None
    result: dict | None = None
    problem: dict | None = None
    progress: dict | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def view(self) -> dict:
        body = {"id": self.id, "kind": self.kind, "state": self.state,
                "size_bytes": self.size_bytes, "created_at": _iso(self.created_at),
                "location": f"/api/v1/import-jobs/{self.id}"}
        if self.finished_at is not None:
            body["finished_at"] = _iso(self.finished_at)
            body["duration_ms"] = round((self.finished_at - self.created_at) * 1000)
        if self.progress is not None and not self.finished:
            body["progress"] = self.progress
        if self.result is not None:
            body["result"] = self.result
        if self.problem is not None:
            body["problem"] = self.problem
        return body


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class ImportJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.running = asyncio.Semaphore(MAX_RUNNING)

    def start(self, owner: Principal, kind: str, size: int, work: ImportCall,
              request: Request) -> Job:
        self._forget_old()
        unfinished = sum(1 for job in self.jobs.values()
                         if job.owner == owner.subject and not job.finished)
        if unfinished >= MAX_UNFINISHED_PER_USER:
            raise TooManyImports(f"{unfinished} of your imports are still running; at most "
                                 f"{MAX_UNFINISHED_PER_USER} at once")
        job = Job(str(uuid.uuid4()), kind, owner.subject, size)
        self.jobs[job.id] = job
        # The task inherits this request's context: the caller's token and request id.
        job.task = asyncio.create_task(self._run(job, work, request))
        return job

    async def _run(self, job: Job, work: ImportCall, request: Request) -> None:
        try:
            async with self.running:
                job.state = "running"
                watching = asyncio.create_task(self._watch_progress(job, request))
                try:
                    job.result = to_json(await work(JOB_DEADLINE_SECONDS))
                finally:
                    watching.cancel()
                job.state = "succeeded"
        except asyncio.CancelledError:
            job.state = "cancelled"
        except grpc.aio.AioRpcError as error:
            job.state = "failed"
            job.problem = json.loads(from_rpc_error(request, error).body)
        finally:
            job.finished_at = time.time()

    @staticmethod
    async def _watch_progress(job: Job, request: Request) -> None:
        """Ask the service how far the job's call has come, until it ends. The call
        runs under this request's id (the task inherited its context)."""
        service = SERVICE_OF_KIND.get(job.kind)
        if service is None:
            return
        stub = progress_pb2_grpc.ImportProgressServiceStub(
            request.app.state.clients.channels[service])
        asking = progress_pb2.GetImportProgressRequest(request_id=current_request_id())
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            try:
                answer = await call(stub.GetImportProgress, asking, PROGRESS_SECONDS)
            except grpc.aio.AioRpcError:
                continue  # progress is a courtesy: the job goes on without it
            if answer.found:
                job.progress = {"phase": answer.phase, "rows_done": answer.rows_done,
                                "rows_total": answer.rows_total}

    def get(self, job_id: str, owner: Principal) -> Job:
        self._forget_old()
        job = self.jobs.get(job_id)
        # Someone else's job is answered as no job at all.
        if job is None or job.owner != owner.subject:
            raise NotFound(f"no import job {job_id}")
        return job

    async def cancel(self, job_id: str, owner: Principal) -> Job:
        job = self.get(job_id, owner)
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)
        return job

    async def close(self) -> None:
        tasks = [job.task for job in self.jobs.values() if job.task and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget_old(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for job_id in [j.id for j in self.jobs.values()
                       if j.finished_at is not None and j.finished_at < cutoff]:
            del self.jobs[job_id]


def wants_job(request: Request, upload: Upload) -> bool:
    return (len(upload.content) > SYNC_IMPORT_BYTES
            or "respond-async" in request.headers.get("prefer", "").lower())


async def run_import(request: Request, caller: Principal, kind: str, upload: Upload,
                     work: ImportCall):
    """The import as a job (202) or within the request (200), as the module says."""
    if wants_job(request, upload):
        job = request.app.state.import_jobs.start(caller, kind, len(upload.content), work,
                                                  request)
        return JSONResponse(job.view(), status_code=202,
                            headers={"Location": job.view()["location"]})
    return to_json(await while_connected(request, work(CALL_TIMEOUT_SECONDS)))


async def while_connected(request: Request, awaitable: Awaitable):
    """Await ``awaitable`` unless the client disconnects first; then cancel it (which
    cancels the service's call) and give up the request."""
    work = asyncio.ensure_future(awaitable)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise asyncio.CancelledError("the client went away")
        return work.result()
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()


async def _disconnected(request: Request) -> None:
    # The body has been read: the next message is the disconnect (or never comes). A
    # server that answers "no more body" again instead is asked again a little later.
    while True:
        if (await request.receive())["type"] == "http.disconnect":
            return
        await asyncio.sleep(0.05)
