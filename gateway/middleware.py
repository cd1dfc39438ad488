"""The gateway's one middleware, plain ASGI (no per-request task or body copying as with
``@app.middleware("http")``): per HTTP request it

- sets the request id (the caller's ``X-Request-ID`` or a new one) and echoes it back;
- refuses an overlong path or query string (414) before anything else;
- refuses a declared body over the limit (413) before reading it, and a streamed
  (chunked) one as soon as it passes the limit: the rest is never read;
- verifies the bearer token and refuses a missing, invalid or revoked one (401) on every
  API route but sign-in, before the body is read: an anonymous caller cannot make the
  gateway read (or hold) a byte of a body;
- limits sign-in attempts per source address (429 with Retry-After, gateway/ratelimit.py);
- adds the security headers to every response (gateway/security.py);
- answers an unexpected exception itself with a 500 problem+json, so the server does
  not see it and the client's keep-alive connection stays open;
- counts every response, these 401 and 413 included, in ``qudao_gateway_request_seconds``
  by method, route template and status;
- writes one JSON log line at INFO: request id, principal, method, route, status and
  duration;
- opens the request's trace span when tracing is on (shared/tracing.py)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from prometheus_client import Histogram
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import problem
from gateway.ratelimit import SignInLimit
from gateway.security import harden
from gateway.uploads import STREAMED_UPLOAD_LIMITS
from shared import tracing
from shared.auth import TokenVerifier, bearer_token
from shared.context import (
    ANONYMOUS,
    new_request_id,
    principal_var,
    request_id_var,
    token_var,
)
from shared.errors import DomainError, Unauthenticated
from shared.logging import enabled_for, get_logger

log = get_logger("gateway.access")
_NO_SPAN = contextlib.nullcontext()

HTTP_SECONDS = Histogram("qudao_gateway_request_seconds", "Gateway request handling time",
                         ["method", "route", "status"])
UNMATCHED = "unmatched"
# No id or filter of this API comes near these; longer ones are refused before any
# service sees them (a 5,000-character id used to fail inside the error conversion).
MAX_PATH_BYTES = 2048
MAX_QUERY_BYTES = 8192
# API routes a caller without a token may use: signing in, and signing out with only the
# refresh token.
PUBLIC_API_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/refresh",
                              "/api/v1/auth/logout"})
# What an anonymous caller may make the gateway read: a username and password, a token.
PUBLIC_BODY_BYTES = 16 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its limit; the app's handler
    answers it 413 problem+json and the connection is closed with the rest unread."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class _RequestHead:
    """The request headers the middleware reads, found in one pass over the raw list
    (the first of each, as starlette's ``Headers.get`` gives)."""

    __slots__ = ("authorization", "content_length", "request_id")

    def __init__(self, scope: Scope) -> None:
        request_id = authorization = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length":
                if length is None:
                    length = value
            elif name == b"x-request-id" and request_id is None:
                request_id = value.decode("latin-1")
        self.request_id = request_id
        self.authorization = authorization
        # None unless given as digits: the server refuses a malformed length itself.
        self.content_length = int(length) if length is not None and length.isdigit() else None


def limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_within_limit


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, verifier: TokenVerifier,
                 is_revoked: Callable[[object], bool], max_body_bytes: int,
                 sign_in_limit: SignInLimit) -> None:
        self.app = app
        self.verifier = verifier
        self.is_revoked = is_revoked
        self.max_body_bytes = max_body_bytes
        self.sign_in_limit = sign_in_limit
        self._templates: list | None = None
        # The histogram's child per (method, route template, status): bounded like its
        # labels, and looked up here instead of through the metric's lock every time.
        self._timers: dict[tuple[str, str, int], object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = _RequestHead(scope)
        request_id = (request.request_id or new_request_id())[:64]
        tokens = (request_id_var.set(request_id), principal_var.set(ANONYMOUS),
                  token_var.set(""))
        status = 500  # what an exception becomes
        started_response = False
        path = scope["path"]
        echoed = (b"x-request-id", request_id.encode("latin-1", "replace"))
        https = scope.get("scheme") == "https"

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                harden(headers, path=path, https=https, also=echoed)
                message["headers"] = headers
            await send(message)

        method = scope["method"]
        try:
            with (self._span(scope, request_id) if tracing.enabled() else _NO_SPAN) as current:
                limit = self._body_limit(path)
                refusal = self._refusal(scope, request, limit)
                if refusal is not None:
                    await refusal(scope, receive, send_with_id)
                else:
                    try:
                        # A declared length is all the server passes on; a streamed
                        # (chunked) body is counted as it comes.
                        await self.app(scope, receive if request.content_length is not None
                                       else limited(receive, limit), send_with_id)
                    except Exception:
                        if started_response:
                            raise
                        log.exception("gateway_crashed", path=path[:200])
                        await problem(Request(scope), 500,
                                      f"internal error (request id {request_id})"
                                      )(scope, receive, send_with_id)
                if current is not None:
                    current.set_attribute("http.response.status_code", status)
                    current.update_name(f"HTTP {method} {self._route(scope)}")
                    tracing.set_status(current, status >= 500)
        finally:
            elapsed = time.perf_counter() - started
            route = self._route(scope)
            self._timer(method, route, status).observe(elapsed)
            if enabled_for(logging.INFO):
                log.info("http_request", method=method, route=route, path=path[:300],
                         status=status, duration_ms=round(elapsed * 1000, 2))
            token_var.reset(tokens[2])
            principal_var.reset(tokens[1])
            request_id_var.reset(tokens[0])

    @staticmethod
    def _span(scope: Scope, request_id: str):
        method = scope["method"]
        return tracing.span(f"HTTP {method}", tracing.SpanKind.SERVER,
                            parent=tracing.context_from(Headers(scope=scope)),
                            attributes={"http.request.method": method,
                                        "url.path": scope["path"],
                                        "qudao.request_id": request_id})

    def _timer(self, method: str, route: str, status: int):
        key = (method, route, status)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = HTTP_SECONDS.labels(method, route, str(status))
        return timer

    def _body_limit(self, path: str) -> int:
        if path in PUBLIC_API_PATHS:
            return PUBLIC_BODY_BYTES
        return STREAMED_UPLOAD_LIMITS.get(path, self.max_body_bytes)

    def _refusal(self, scope: Scope, request: _RequestHead, limit: int):
        """A 414, 413, 429 or 401 answered here, before the body is read, or None to go
        on."""
        path_bytes = len(scope.get("raw_path") or scope["path"].encode())
        if path_bytes > MAX_PATH_BYTES or len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            return problem(Request(scope), 414,
                           f"the path may have at most {MAX_PATH_BYTES} bytes and the query "
                           f"string at most {MAX_QUERY_BYTES}", reason="URI_TOO_LONG")
        if request.content_length is not None and request.content_length > limit:
            return problem(Request(scope), 413, f"request body exceeds {limit} bytes")
        if retry_after := self.sign_in_limit.retry_after(scope):
            return problem(Request(scope), 429,
                           "too many sign-in attempts from this address; try again later",
                           reason="RATE_LIMITED", headers={"Retry-After": str(retry_after)})
        token = bearer_token(request.authorization)
        if not token:
            if self._needs_caller(scope):
                return problem(Request(scope), 401, "sign in first: missing bearer token",
                               reason="TOKEN_MISSING")
            return None
        try:
            principal = self.verifier.verify(token)
            if self.is_revoked(principal):
                raise Unauthenticated("the session has been revoked", reason="TOKEN_REVOKED")
        except DomainError as error:
            path = scope["path"]
            if path.startswith("/api/") and not path.startswith("/api/v1/auth/"):
                return problem(Request(scope), 401, error.message, reason=error.reason)
            # Sign-in routes run without the token; one that needs a caller says why.
            scope.setdefault("state", {})["auth_error"] = error
            return None
        principal_var.set(principal)
        token_var.set(token)
        return None

    def _needs_caller(self, scope: Scope) -> bool:
        """An API route (a documented one: unknown paths keep their 404) other than
        sign-in."""
        path = scope["path"]
        return (path.startswith("/api/") and path not in PUBLIC_API_PATHS
                and self._route(scope) != UNMATCHED)

    def _route(self, scope: Scope) -> str:
        """The route template (``/api/v1/orders/{order_id}``), never the raw path, so the
        metric's labels stay bounded; for responses given before routing (401, 413),
        matched against the API's documented paths."""
        route = scope.get("route")
        path = getattr(route, "path", None) if route is not None else None
        if path:
            return path
        if self._templates is None:
            app = scope.get("app")
            documented = app.openapi().get("paths", {}) if app is not None else {}
            self._templates = [(compile_path(template)[0], template) for template in documented]
        for pattern, template in self._templates:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED
