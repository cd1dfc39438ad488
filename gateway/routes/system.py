"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    services = await request.app.state.clients.health()
    ready = all(status == "SERVING" for status in services.values())
    return JSONResponse({"status": "ok" if ready else "degraded", "services": services},
                        status_code=200 if ready else 503)
