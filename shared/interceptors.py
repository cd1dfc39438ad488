"""gRPC server interceptor: binds the request id and the verified principal, logs each
call, and turns domain errors into a status with google.rpc details (ErrorInfo and
BadRequest field violations) that the gateway maps to problem+json."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

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
    REQUEST_ID_KEY,
    new_request_id,
    principal_var,
    request_id_var,
    token_var,
)
from shared.errors import DomainError, Unauthenticated
from shared.logging import get_logger

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


class ContextInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        service: str,
        verifier: TokenVerifier,
        public_methods: Iterable[str] = (),
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self.service = service
        self.verifier = verifier
        self.public_methods = ALWAYS_PUBLIC | frozenset(public_methods)
        self.is_revoked = is_revoked
        self.domain = f"qudao.{service}"

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metadata = dict(handler_call_details.invocation_metadata or ())
        public = method in self.public_methods

        def wrap_unary(behaviour):
            async def wrapper(request_or_iterator, context):
                return await self._call(behaviour, request_or_iterator, context, method,
                                        metadata, public)
            return wrapper

        def wrap_stream(behaviour):
            async def wrapper(request, context):
                async for response in self._stream(behaviour, request, context, method,
                                                   metadata, public):
                    yield response
            return wrapper

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap_unary(handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream and not public:
            # A service's own server-streaming methods (progress, downloads) are
            # authenticated like the rest; health Watch stays public.
            return grpc.unary_stream_rpc_method_handler(
                wrap_stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Reflection (bidirectional) and health Watch pass through untouched.
        return handler

    async def _call(self, behaviour, request, context, method, metadata, public):
        async with self._serving(context, method, metadata, public):
            return await behaviour(request, context)

    async def _stream(self, behaviour, request, context, method, metadata, public):
        async with self._serving(context, method, metadata, public):
            async for response in behaviour(request, context):
                yield response

    @contextlib.asynccontextmanager
    async def _serving(self, context, method, metadata, public):
        """Around one call: the caller's request id, principal and token bound for the
        handler and every log line, a span, the token checked; on the way out a domain
        error becomes a status with details, and the call is counted and logged."""
        request_id = metadata.get(REQUEST_ID_KEY) or new_request_id()
        request_token = request_id_var.set(request_id)
        principal_token = principal_var.set(ANONYMOUS)
        bearer = bearer_token(metadata.get(AUTHORIZATION_KEY))
        token_token = token_var.set(bearer or "")
        structlog.contextvars.bind_contextvars(request_id=request_id, rpc=method)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        parent = tracing.context_from(metadata) if tracing.enabled() else None
        try:
            with tracing.span(method.lstrip("/"), tracing.SpanKind.SERVER, parent=parent,
                              attributes={"rpc.system": "grpc", "rpc.method": method,
                                          "qudao.request_id": request_id}) as current:
                try:
                    if bearer:
                        principal = self.verifier.verify(bearer)
                        if self.is_revoked is not None and self.is_revoked(principal):
                            raise Unauthenticated("the session has been revoked",
                                                  reason="TOKEN_REVOKED")
                        principal_var.set(principal)
                        structlog.contextvars.bind_contextvars(principal=principal.subject)
                    elif not public:
                        raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
                    yield
                except DomainError as error:
                    code = grpc.StatusCode[error.code]
                    if error.code in ("INTERNAL", "UNKNOWN"):
                        log.error("rpc_failed", error=error.message)
                    await context.abort_with_status(status_for(error, self.domain))
                except grpc.aio.AbortError:
                    if code is grpc.StatusCode.OK:
                        code = _aborted_code(context)
                    raise
                except Exception:
                    code = grpc.StatusCode.INTERNAL
                    log.exception("rpc_crashed")
                    await context.abort(grpc.StatusCode.INTERNAL,
                                        f"internal error (request id {request_id})")
                finally:
                    if current is not None:
                        current.set_attribute("rpc.grpc.status_code", code.value[0])
                        tracing.set_status(current, code not in _CLIENT_ERRORS, code.name)
        finally:
            elapsed = time.perf_counter() - started
            RPC_SECONDS.labels(method, code.name).observe(elapsed)
            access_log.info("rpc", route=method, status=code.name,
                            duration_ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id", "rpc", "principal")
            request_id_var.reset(request_token)
            principal_var.reset(principal_token)
            token_var.reset(token_token)


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
