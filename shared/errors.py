"""Domain errors. Use cases raise these; the gRPC interceptor turns them into a status
with google.rpc details, and the gateway into RFC 9457 problem+json naming the field.
Pure Python: ``code`` is the name of the gRPC status code the error maps to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class DomainError(Exception):
    code: str = "UNKNOWN"
    reason: str = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        violations: list[FieldViolation] | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = list(violations or [])
        if reason:
            self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    reason = "INVALID_ARGUMENT"

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", violations=[FieldViolation(field, description)])


class NotFound(DomainError):
    code = "NOT_FOUND"
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"
    reason = "FAILED_PRECONDITION"


class StaleVersion(FailedPrecondition):
    """The caller edited a version of the resource that is no longer the current one
    (the gateway's 412 for an ``If-Match`` that no longer matches)."""

    reason = "STALE_VERSION"

    def __init__(self, what: str, expected: int, current: int) -> None:
        super().__init__(f"{what} has changed meanwhile (version {current}, not "
                         f"{expected}); read it again and redo the change",
                         metadata={"current_version": str(current)})


def check_version(what: str, expected: int, current: int) -> None:
    """``expected`` 0 asks for no check (``If-Match`` is optional)."""
    if expected and expected != current:
        raise StaleVersion(what, expected, current)


class Conflict(DomainError):
    code = "ABORTED"
    reason = "CONFLICT"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """Too many attempts for now; ``metadata["retry_after_seconds"]`` says when to retry
    (the gateway's Retry-After)."""

    code = "RESOURCE_EXHAUSTED"
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, metadata={"retry_after_seconds": str(retry_after_seconds)})


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


def collect(violations: list[FieldViolation], message: str = "invalid request") -> None:
    """Raise one InvalidArgument carrying every violation found, if there are any."""
    if violations:
        first = violations[0]
        summary = f"{first.field}: {first.description}"
        if len(violations) > 1:
            summary += f" (and {len(violations) - 1} more)"
        raise InvalidArgument(summary if message == "invalid request" else message,
                              violations=violations)
