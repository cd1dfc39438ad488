"""Around every gRPC call a service serves: binds the request id and the verified
principal, logs and counts each call, answers a repeated Idempotency-Key, and turns
domain errors into a status with google.rpc details (ErrorInfo and BadRequest field
violations) that the gateway maps to problem+json."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Histogram

from shared import tracing
from shared.auth import TokenVerifier, bearer_token
from shared.context import (
    ANONYMOUS,
    AUTHORIZATION_KEY,
    IDEMPOTENCY_KEY,
    REQUEST_ID_KEY,
    new_request_id,
    principal_var,
    request_id_var,
    token_var,
)
from shared.errors import DomainError, Unauthenticated
from shared.logging import enabled_for, get_logger

if TYPE_CHECKING:
    from shared.idempotency import ClientRequests

log = get_logger(__name__)
access_log = get_logger("qudao.rpc")

RPC_SECONDS = Histogram(
    "qudao_grpc_server_handling_seconds", "gRPC server handling time", ["method", "code"]
)

ALWAYS_PUBLIC = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


def status_for(error: DomainError, domain: str) -> grpc.Status:
    details = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain)
    for key, value in error.metadata.items():
        info.metadata[key] = str(value)
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field,
                                                            description=v.description)
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    return rpc_status.to_status(
        status_pb2.Status(code=grpc.StatusCode[error.code].value[0], message=error.message,
                          details=details)
    )


RevocationCheck = Callable[[object], bool]
_OK = grpc.StatusCode.OK
_NO_SPAN = contextlib.nullcontext()


class _Method:
    """What a method's calls share, worked out once: its name, whether it is public, and
    its histogram child for successful calls (made at the first one)."""

    __slots__ = ("name", "ok", "public")

    def __init__(self, name: str, public: bool) -> None:
        self.name = name
        self.public = public
        self.ok = None

    def observe(self, code: grpc.StatusCode, seconds: float) -> None:
        if code is _OK:
            if self.ok is None:
                self.ok = RPC_SECONDS.labels(self.name, _OK.name)
            self.ok.observe(seconds)
        else:
            RPC_SECONDS.labels(self.name, code.name).observe(seconds)


class _Call:
    """One call's state, from its metadata to its status."""

    __slots__ = (
        "authorization",
        "code",
        "idempotency_key",
        "metadata",
        "method",
        "request_id",
        "started",
        "tokens",
    )

    def __init__(self, method: _Method, metadata) -> None:
        self.method = method
        self.metadata = metadata
        request_id = authorization = idempotency_key = ""
        for key, value in metadata:
            if key == REQUEST_ID_KEY:
                request_id = value
            elif key == AUTHORIZATION_KEY:
                authorization = value
            elif key == IDEMPOTENCY_KEY:
                idempotency_key = value
        self.request_id = request_id or new_request_id()
        self.authorization = authorization
        self.idempotency_key = idempotency_key
        self.code = _OK


class ContextInterceptor:
    """Around every call of the service's own methods (and health checks): the caller's
    request id, principal and token bound for the handler and every log line, a span
    when tracing is on, the token checked; a call with an Idempotency-Key answered once
    (shared/idempotency.py); on the way out a domain error becomes a status with
    details, and the call is counted and logged.

    Not a grpc.aio interceptor: grpc runs those on every call to choose the handler
    (coroutines, new handler objects, the metadata copied into a dict). Here each
    method's handler is wrapped once, as the service registers it (``registrar``)."""

    def __init__(
        self,
        service: str,
        verifier: TokenVerifier,
        public_methods: Iterable[str] = (),
        is_revoked: RevocationCheck | None = None,
        client_requests: ClientRequests | None = None,
    ) -> None:
        self.service = service
        self.verifier = verifier
        self.public_methods = ALWAYS_PUBLIC | frozenset(public_methods)
        self.is_revoked = is_revoked
        self.client_requests = client_requests
        self.domain = f"qudao.{service}"

    def registrar(self, server: grpc.aio.Server) -> Handlers:
        """What to add the servicers to (``add_…Servicer_to_server(servicer, handlers)``)
        instead of ``server``."""
        return Handlers(server, self.wrap)

    def wrap(self, name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        method = _Method(name, name in self.public_methods)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, idempotent=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, idempotent=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream and not method.public:
            # A service's own server-streaming methods (progress, downloads) are
            # authenticated like the rest; health Watch stays public.
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Reflection (bidirectional) and health Watch pass through untouched.
        return handler

    def _unary(self, method: _Method, behaviour, *, idempotent: bool):
        requests = self.client_requests if idempotent else None

        async def unary(request, context):
            call = self._begin(method, context)
            try:
                with self._span(call):
                    try:
                        self._authenticate(call)
                        if requests is not None and call.idempotency_key:
                            return await requests.once(method.name, call.idempotency_key,
                                                       request,
                                                       lambda: behaviour(request, context))
                        return await behaviour(request, context)
                    except Exception as error:
                        await self._failed(call, error, context)
                        raise
            finally:
                self._end(call)

        return unary

    def _stream(self, method: _Method, behaviour):
        async def stream(request, context):
            call = self._begin(method, context)
            try:
                with self._span(call):
                    try:
                        self._authenticate(call)
                        async for response in behaviour(request, context):
                            yield response
                    except Exception as error:
                        await self._failed(call, error, context)
                        raise
            finally:
                self._end(call)

        return stream

    @staticmethod
    def _begin(method: _Method, context) -> _Call:
        call = _Call(method, context.invocation_metadata())
        call.tokens = (request_id_var.set(call.request_id), principal_var.set(ANONYMOUS),
                       token_var.set(""),
                       # The request id and principal join log lines through
                       # request_id_var and principal_var (shared/logging.py).
                       structlog.contextvars.bind_contextvars(rpc=method.name))
        call.started = time.perf_counter()
        return call

    def _authenticate(self, call: _Call) -> None:
        bearer = bearer_token(call.authorization)
        if bearer:
            principal = self.verifier.verify(bearer)
            if self.is_revoked is not None and self.is_revoked(principal):
                raise Unauthenticated("the session has been revoked", reason="TOKEN_REVOKED")
            principal_var.set(principal)
            token_var.set(bearer)
        elif not call.method.public:
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")

    async def _failed(self, call: _Call, error: Exception, context) -> None:
        """A domain error or crash answered with its status (raises AbortError); an
        abort by the handler recorded."""
        if isinstance(error, DomainError):
            call.code = grpc.StatusCode[error.code]
            if error.code in ("INTERNAL", "UNKNOWN"):
                log.error("rpc_failed", error=error.message)
            await context.abort_with_status(status_for(error, self.domain))
        elif isinstance(error, grpc.aio.AbortError):
            if call.code is _OK:
                call.code = _aborted_code(context)
        else:
            call.code = grpc.StatusCode.INTERNAL
            log.exception("rpc_crashed")
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"internal error (request id {call.request_id})")

    @staticmethod
    def _span(call: _Call):
        return _traced(call) if tracing.enabled() else _NO_SPAN

    @staticmethod
    def _end(call: _Call) -> None:
        elapsed = time.perf_counter() - call.started
        call.method.observe(call.code, elapsed)
        if enabled_for(logging.INFO):
            access_log.info("rpc", route=call.method.name, status=call.code.name,
                            duration_ms=round(elapsed * 1000, 2))
        request_token, principal_token, token_token, bound = call.tokens
        structlog.contextvars.reset_contextvars(**bound)
        request_id_var.reset(request_token)
        principal_var.reset(principal_token)
        token_var.reset(token_token)


@contextlib.contextmanager
def _traced(call: _Call):
    """The call's server span, child of the caller's (its traceparent in the metadata)."""
    name = call.method.name
    with tracing.span(name.lstrip("/"), tracing.SpanKind.SERVER,
                      parent=tracing.context_from(dict(call.metadata)),
                      attributes={"rpc.system": "grpc", "rpc.method": name,
                                  "qudao.request_id": call.request_id}) as current:
        try:
            yield
        finally:
            current.set_attribute("rpc.grpc.status_code", call.code.value[0])
            tracing.set_status(current, call.code not in _CLIENT_ERRORS, call.code.name)


class Handlers(grpc.GenericRpcHandler):
    """A server's method handlers, each wrapped once as it is added, found by one
    dictionary lookup per call. Generated code adds a service's handlers twice, as a
    generic handler and as "registered" methods; only the generic way reaches the
    server: grpc.aio's serving loop waits on one future per registered method for every
    call it accepts, a cost growing with the number of methods (~60 in order)."""

    def __init__(self, server: grpc.aio.Server,
                 wrap: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]) -> None:
        self._server = server
        self._wrap = wrap
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        server.add_generic_rpc_handlers((self,))

    def service(self, handler_call_details):
        return self._handlers.get(handler_call_details.method)

    def add_registered_method_handlers(
            self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            method = f"/{service}/{name}"
            self._handlers[method] = self._wrap(method, handler)

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        # Their methods are found here first when also registered; any other, through
        # them, wrapped at its first call.
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(handler, self._wrap) for handler in handlers))


class _WrappedGeneric(grpc.GenericRpcHandler):
    def __init__(self, handler: grpc.GenericRpcHandler, wrap) -> None:
        self._handler = handler
        self._wrap = wrap
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, handler_call_details):
        handler = self._handler.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]


def _aborted_code(context) -> grpc.StatusCode:
    """The code a servicer aborted with (context.abort), ABORTED when unknown."""
    try:
        code = context.code()
    except Exception:
        return grpc.StatusCode.ABORTED
    if isinstance(code, grpc.StatusCode):
        return code
    return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.ABORTED)


# Answers about the request, not failures of the service: not marked as span errors.
_CLIENT_ERRORS = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ABORTED,
})
