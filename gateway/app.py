"""The gateway: the only door for web and mobile clients. REST/JSON with OpenAPI, bearer
authentication, request ids, and problem+json errors for everything that goes wrong."""

from __future__ import annotations

import contextlib
import json
import time
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import portal
from gateway.clients import Clients
from gateway.problems import from_rpc_error, problem
from gateway.routes import auth, identity, incentive, orders, registration, system
from shared.auth import TokenVerifier, bearer_token
from shared.bus.connection import connect
from shared.context import (
    ANONYMOUS,
    REQUEST_ID_KEY,
    new_request_id,
    principal_var,
    request_id_var,
    token_var,
)
from shared.errors import DomainError, Unauthenticated
from shared.logging import get_logger
from shared.revocation import IdentityEvents, RevocationList
from shared.settings import GatewaySettings

log = get_logger(__name__)
HTTP_SECONDS = Histogram("qudao_gateway_request_seconds", "Gateway request handling time",
                         ["method", "route", "status"])
MAX_BODY_BYTES = 10 * 1024 * 1024


def _field_path(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


def create_app(settings: GatewaySettings) -> FastAPI:
    verifier = TokenVerifier.from_file(settings.jwt_public_key_file)

    revocations = RevocationList()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.clients = Clients(settings.service_addrs)
        nc = watcher = None
        if settings.nats_url:
            nc = await connect(settings.nats_url, "qudao-gateway")
            watcher = IdentityEvents(nc, revocations)
            await watcher.start()
        yield
        if watcher is not None:
            await watcher.stop()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.drain()
        await app.state.clients.close()

    app = FastAPI(
        title="Qudao API",
        version="1.0.0",
        description="Dealer-channel management: identity, registration, orders, flow, "
                    "incentives. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
    )
    app.state.verifier = verifier
    app.state.revocations = revocations

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        HTTP_SECONDS.labels(request.method, getattr(route, "path", "unmatched"),
                            str(response.status_code)).observe(time.perf_counter() - started)
        return response

    @app.middleware("http")
    async def request_context(request: Request, call_next):
        request_id = request.headers.get(REQUEST_ID_KEY) or new_request_id()
        tokens = [request_id_var.set(request_id[:64]), principal_var.set(ANONYMOUS),
                  token_var.set("")]
        try:
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
                return problem(request, 413, f"request body exceeds {MAX_BODY_BYTES} bytes")
            token = bearer_token(request.headers.get("authorization"))
            if token:
                try:
                    principal = verifier.verify(token)
                    if revocations.is_revoked(principal):
                        raise Unauthenticated("the session has been revoked",
                                              reason="TOKEN_REVOKED")
                    principal_var.set(principal)
                    token_var.set(token)
                except DomainError as error:
                    if request.url.path.startswith("/api/") and not request.url.path.startswith(
                            "/api/v1/auth/"):
                        return problem(request, 401, error.message, reason=error.reason)
                    # Sign-in routes run without the token; one that needs a caller says why.
                    request.state.auth_error = error
            response = await call_next(request)
            response.headers["X-Request-ID"] = request_id_var.get()
            return response
        finally:
            token_var.reset(tokens[2])
            principal_var.reset(tokens[1])
            request_id_var.reset(tokens[0])

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

    @app.exception_handler(Exception)
    async def crash(request: Request, error: Exception):
        log.exception("gateway_crashed")
        return problem(request, 500, f"internal error (request id {request_id_var.get()})")

    app.include_router(system.router)
    app.include_router(auth.router)
    app.include_router(identity.router)
    app.include_router(orders.router)
    app.include_router(incentive.router)
    app.include_router(registration.router)
    # The web portal answers the GETs no route takes (its routes live in the browser).
    portal.mount(app)
    return app
