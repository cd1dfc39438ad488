"""The gateway: the only door for web and mobile clients. REST/JSON with OpenAPI, bearer
authentication, request ids, and problem+json errors for everything that goes wrong."""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import portal
from gateway.clients import Clients
from gateway.import_jobs import ImportJobs
from gateway.middleware import GatewayMiddleware
from gateway.problems import from_rpc_error, problem
from gateway.ratelimit import SignInLimit
from gateway.routes import (
    auth,
    engagement,
    exports,
    flow,
    identity,
    import_jobs,
    incentive,
    materials,
    notices,
    orders,
    registration,
    stats,
    system,
)
from gateway.routing import index_routes
from gateway.schemas import typed_openapi
from gateway.security import cors_middleware
from gateway.uploads import FORM_ALLOWANCE_BYTES, MAX_IMPORT_BYTES
from shared.auth import TokenVerifier
from shared.bus.connection import connect_as
from shared.errors import DomainError
from shared.logging import get_logger
from shared.revocation import IdentityEvents, RevocationList
from shared.settings import GatewaySettings

log = get_logger(__name__)
# Any body but a sell-through file's (gateway/uploads.py): an import file in a form.
MAX_BODY_BYTES = MAX_IMPORT_BYTES + FORM_ALLOWANCE_BYTES


def _field_path(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


async def _follow_identity(app: FastAPI, settings: GatewaySettings,
                           revocations: RevocationList) -> None:
    nc = await connect_as(settings, wait_for_server=True)
    watcher = IdentityEvents(nc, revocations)
    app.state.identity_events = watcher
    try:
        await watcher.start(wait=0)
        await asyncio.Event().wait()
    finally:
        await watcher.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), 5)


def create_app(settings: GatewaySettings) -> FastAPI:
    verifier = TokenVerifier.from_file(settings.jwt_public_key_file)

    revocations = RevocationList()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.clients = Clients(settings.service_addrs)
        app.state.import_jobs = ImportJobs()
        # Revocations follow identity's stream in the background: the gateway serves at
        # once, and its readiness (/readyz/local) waits for the first catch-up.
        following = (asyncio.create_task(_follow_identity(app, settings, revocations))
                     if settings.nats_url else None)
        yield
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        await app.state.import_jobs.close()
        await app.state.clients.close()

    app = FastAPI(
        title="Qudao API",
        version="1.0.0",
        description="Dealer-channel management: identity, registration, orders, flow, "
                    "incentives. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        # Spans, metrics and the access log are GatewayMiddleware's; FastAPI's own
        # OpenTelemetry would add a second server span per request and look up its
        # providers on every one.
        telemetry={"tracing": False, "metrics": False, "logs": False,
                   "operation_spans": False},
        # CORS inside GatewayMiddleware: its answers (preflights too) get request ids
        # and security headers like any other.
        middleware=cors_middleware(settings.cors_origins),
    )
    app.state.verifier = verifier
    app.state.revocations = revocations
    app.state.identity_events = None
    app.state.follows_identity = bool(settings.nats_url)
    app.add_middleware(GatewayMiddleware, verifier=verifier,
                       is_revoked=revocations.is_revoked, max_body_bytes=MAX_BODY_BYTES,
                       sign_in_limit=SignInLimit(settings.rate_limit_per_minute))

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, error: grpc.aio.AioRpcError):
        if error.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ALREADY_EXISTS):
            log.warning("rpc_error", code=error.code().name, details=error.details())
        return from_rpc_error(request, error)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError):
        from gateway.problems import HTTP_FOR_GRPC

        return problem(request, HTTP_FOR_GRPC.get(grpc.StatusCode[error.code], 500), error.message,
                       reason=error.reason,
                       errors=[{"field": v.field, "message": v.description}
                               for v in error.violations])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        errors = []
        for item in error.errors():
            if item.get("type") == "json_invalid":
                return problem(request, 400, "the request body is not valid JSON",
                               reason="MALFORMED_JSON",
                               errors=[{"field": "body", "message": item.get("msg", "")}])
            errors.append({"field": _field_path(tuple(item.get("loc", ()))),
                           "message": item.get("msg", "invalid")})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        return problem(request, 422, summary or "invalid request", reason="VALIDATION_FAILED",
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return problem(request, error.status_code, str(error.detail))

    @app.exception_handler(json.JSONDecodeError)
    async def json_error(request: Request, error: json.JSONDecodeError):
        return problem(request, 400, f"the request body is not valid JSON: {error.msg}",
                       reason="MALFORMED_JSON")

    # Exports before the others: /orders/export must not be taken for the order "export".
    # (An unexpected exception is answered by GatewayMiddleware, keeping the connection.)
    routers = [system.router, auth.router, identity.router, notices.router, materials.router,
               exports.router, orders.router, incentive.router, registration.router,
               flow.router, import_jobs.router, stats.router, engagement.router]
    for router in routers:
        app.include_router(router)
    # The web portal answers the GETs no route takes (its routes live in the browser).
    portal.mount(app)
    index_routes(app)

    untyped_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = typed_openapi(routers, untyped_openapi())
        return app.openapi_schema

    app.openapi = openapi
    return app
