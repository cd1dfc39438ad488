"""Liveness and readiness.

- ``/healthz``: liveness, for the kubelet: the process runs and answers. Nothing else, so
  a database failover or a sick service never gets the gateway restarted.
- ``/readyz/local``: readiness, for the kubelet: this gateway itself can serve (started;
  with NATS configured, its revocation list has caught up with identity's stream once).
  It does not ask the services: one sick service must not take the whole API away.
- ``/readyz``: the detailed view for people and tests: every service's gRPC health and
  the gateway's own state; 503 unless all are serving."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


def _local(request: Request) -> dict:
    state = request.app.state
    if not state.follows_identity:
        return {"ready": True, "revocations": "not configured"}
    watcher = state.identity_events
    if watcher is None:
        return {"ready": False, "revocations": "connecting to NATS"}
    if not watcher.caught_up.is_set():
        return {"ready": False, "revocations": "catching up"}
    return {"ready": True, "revocations": f"following (sequence {watcher.last_sequence})"}


@router.get("/readyz/local")
async def readyz_local(request: Request) -> JSONResponse:
    local = _local(request)
    return JSONResponse({"status": "ok" if local["ready"] else "starting",
                         "revocations": local["revocations"]},
                        status_code=200 if local["ready"] else 503)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    services = await request.app.state.clients.health()
    local = _local(request)
    ready = local["ready"] and all(status == "SERVING" for status in services.values())
    return JSONResponse({"status": "ok" if ready else "degraded", "services": services,
                         "gateway": local},
                        status_code=200 if ready else 503)
