"""The web portal (portal/, built into portal/dist by ``make install``) served at ``/``.

Hashed assets under ``/assets/`` are cached for a year; ``index.html`` is never cached,
so a new build reaches browsers at once. A GET that no API route answers, outside
``/api/``, gets ``index.html`` (the app routes in the browser). The portal is the
router's fallback rather than a route, so unknown API paths keep their problem+json 404
for every method."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.requests import Request

from gateway.problems import problem

DIST = Path(__file__).resolve().parent.parent / "portal" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
# Paths that are never the portal's, even when nothing else answers them.
NOT_PORTAL = ("api/", "openapi.json", "docs", "redoc", "healthz", "readyz", "metrics")


def portal_response(root: Path, request: Request) -> Response:
    index = root / "index.html"
    if not index.is_file():
        return problem(request, 503, "the portal is not built: run 'make install'",
                       reason="PORTAL_NOT_BUILT")
    path = request.url.path.lstrip("/")
    if path:
        candidate = (root / path).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            cache = IMMUTABLE if path.startswith("assets/") else "public, max-age=3600"
            return FileResponse(candidate, headers={"Cache-Control": cache})
        if path.startswith("assets/"):
            return problem(request, 404, f"no asset {request.url.path}")
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def mount(app: FastAPI, dist: Path = DIST) -> None:
    root = dist.resolve()
    not_found = app.router.default

    async def fallback(scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and not scope["path"].lstrip("/").startswith(NOT_PORTAL)):
            await portal_response(root, Request(scope, receive))(scope, receive, send)
        else:
            await not_found(scope, receive, send)

    app.router.default = fallback
