"""RFC 9457 problem+json for every error, mapped from gRPC status codes and their
google.rpc details so the client always learns which field was wrong."""

from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from shared.context import current_request_id

HTTP_FOR_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    409: "Conflict", 412: "Precondition Failed", 413: "Payload Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 429: "Too Many Requests", 499: "Client Closed Request",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem(request: Request, status: int, detail: str, *, reason: str = "",
            errors: list[dict] | None = None, extra: dict | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "type": f"https://qudao.dev/problems/{(reason or TITLES.get(status, 'error')).lower()}"
        .replace(" ", "-").replace("_", "-"),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        # Bounded: the path may be what was refused for its length.
        "instance": request.url.path[:256],
        "request_id": current_request_id(),
    }
    if reason:
        body["reason"] = reason
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    headers = {"X-Request-ID": current_request_id(), **(headers or {})}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="qudao"'
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


def from_rpc_error(request: Request, error: grpc.aio.AioRpcError) -> JSONResponse:
    status = HTTP_FOR_GRPC.get(error.code(), 500)
    reason = ""
    errors: list[dict] = []
    extra: dict = {}
    detail = error.details() or error.code().name
    rich = rpc_status.from_call(error)
    if rich is not None:
        for packed in rich.details:
            if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                packed.Unpack(bad_request)
                errors.extend({"field": v.field, "message": v.description}
                              for v in bad_request.field_violations)
            elif packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                reason = info.reason
                if info.metadata:
                    extra["metadata"] = dict(info.metadata)
    if reason == "STALE_VERSION":
        # The service compared the If-Match version with the current one and refused.
        status = 412
    if status >= 500 and error.code() != grpc.StatusCode.UNAVAILABLE:
        detail = f"internal error (request id {current_request_id()})"
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        detail = "a backing service is unavailable; try again"
    # A service that refuses for now (a rate limit) says when to come back.
    retry_after = extra.get("metadata", {}).get("retry_after_seconds")
    headers = {"Retry-After": retry_after} if retry_after else None
    return problem(request, status, detail, reason=reason, errors=errors, extra=extra,
                   headers=headers)
