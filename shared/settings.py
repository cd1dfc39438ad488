"""Settings from environment variables, parsed once at start into one typed, frozen
object per process. A missing, malformed or unknown ``QUDAO_*`` variable stops the
process with a message naming the variable and what was expected.

Names:
- suite-wide settings are ``QUDAO_<NAME>`` (NATS, JWT keys, logging);
- a process's own settings are ``QUDAO_<PROCESS>_<NAME>`` (database, ports);
- a service's options are ``QUDAO_<SERVICE>_OPTION_<NAME>``.

A process rejects any variable under its own prefix that it does not declare, and any
suite-wide-looking ``QUDAO_<NAME>`` that no process of the suite reads; variables under
another process's prefix are that process's business.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

SERVICES = ("identity", "registration", "order", "flow", "incentive", "engagement")
DEFAULT_GRPC_PORTS = {
    "identity": 50151,
    "registration": 50152,
    "order": 50153,
    "flow": 50154,
    "incentive": 50155,
    "engagement": 50156,
}
DEFAULT_METRICS_PORTS = {name: port + 1000 for name, port in DEFAULT_GRPC_PORTS.items()}
GATEWAY_METRICS_PORT = 51150

# Every QUDAO_<NAME> some process of the suite reads (not under a process prefix).
SUITE_VARIABLES = frozenset({
    "QUDAO_NATS_URL",
    "QUDAO_NATS_STREAM_REPLICAS",
    "QUDAO_JWT_PUBLIC_KEY_FILE",
    "QUDAO_JWT_PRIVATE_KEY_FILE",
    "QUDAO_IDENTITY_ADDR",
    "QUDAO_LOG_LEVEL",
    "QUDAO_LOG_FORMAT",
    "QUDAO_TRACING",
})
# Prefixes of the suite's processes and tools; each checks its own.
PROCESS_PREFIXES = tuple(f"QUDAO_{name.upper()}_"
                         for name in (*SERVICES, "gateway", "erp", "ops"))


# QUDAO_TRACING: OpenTelemetry off (default), exported over OTLP, or printed (shared/tracing).
Tracing = Literal["off", "otlp", "console"]


class ConfigError(RuntimeError):
    """A setting is missing, malformed or unknown; the message names the variable."""


class ProcessSettings(BaseModel):
    """Base of every process's settings. Subclasses declare fields; ``suite_fields`` and
    ``own_fields`` say which names they take, every other field is an option."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    process: ClassVar[str] = ""
    suite_fields: ClassVar[frozenset[str]] = frozenset()
    own_fields: ClassVar[frozenset[str]] = frozenset()
    options_infix: ClassVar[str] = "OPTION_"

    @classmethod
    def variable(cls, field: str) -> str:
        if field in cls.suite_fields:
            return f"QUDAO_{field.upper()}"
        if field in cls.own_fields:
            return f"QUDAO_{cls.process.upper()}_{field.upper()}"
        return f"QUDAO_{cls.process.upper()}_{cls.options_infix}{field.upper()}"

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Environment variable → field, for every field."""
        return {cls.variable(field): field for field in cls.model_fields}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        source = os.environ if env is None else env
        known = cls.variables()
        _refuse_unknown(cls.process, known, source)
        values = {field: source[name] for name, field in known.items()
                  if source.get(name, "") != ""}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError("; ".join(_describe(cls, error) for error in exc.errors())) \
                from None


def _refuse_unknown(process: str, known: dict[str, str], source: Mapping[str, str]) -> None:
    own_prefix = f"QUDAO_{process.upper()}_"
    for name in source:
        if not name.startswith("QUDAO_") or name in known or name in SUITE_VARIABLES:
            continue
        if name.startswith(own_prefix):
            expected = [*known]
        elif name.startswith(PROCESS_PREFIXES):
            continue
        else:
            expected = [*SUITE_VARIABLES]
        hint = difflib.get_close_matches(name, expected, n=1)
        raise ConfigError(f"unknown environment variable {name}"
                          + (f" (did you mean {hint[0]}?)" if hint else ""))


def _describe(cls: type[ProcessSettings], error) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    name = cls.variable(field) if field in cls.model_fields else field
    if error["type"] == "missing":
        return f"missing required environment variable {name}"
    annotation = cls.model_fields[field].annotation if field in cls.model_fields else None
    expected = getattr(annotation, "__name__", str(annotation))
    return (f"environment variable {name} must be {expected}: {error['msg']} "
            f"(got {error.get('input')!r})")


class ServiceSettings(ProcessSettings):
    """What every service reads; each service subclasses it with its own options."""

    suite_fields: ClassVar[frozenset[str]] = frozenset({
        "nats_url", "nats_stream_replicas", "jwt_public_key_file", "identity_addr",
        "log_level", "log_format", "tracing"})
    own_fields: ClassVar[frozenset[str]] = frozenset({
        "database_url", "grpc_host", "grpc_port", "metrics_port", "nats_password"})

    nats_url: str
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    jwt_public_key_file: Path
    identity_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['identity']}"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    tracing: Tracing = "off"
    # This service's NATS user is its name; the password comes from a Secret. Empty:
    # a server without authorization (a developer's own nats-server).
    nats_password: SecretStr = SecretStr("")

    database_url: str
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    metrics_port: int = 0

    # Consumers: deliveries before an event is dead-lettered, and how long an unacked
    # delivery waits before it is redelivered.
    max_deliveries: int = 5
    ack_wait_seconds: float = 30.0
    # Set where migrations run once per release (a Job) instead of at every start.
    skip_migrations: bool = False

    @property
    def service(self) -> str:
        return self.process

    def model_post_init(self, _context) -> None:
        if not self.grpc_port:
            object.__setattr__(self, "grpc_port", DEFAULT_GRPC_PORTS[self.process])


class GatewaySettings(ProcessSettings):
    process: ClassVar[str] = "gateway"
    suite_fields: ClassVar[frozenset[str]] = frozenset({
        "nats_url", "jwt_public_key_file", "log_level", "log_format", "tracing"})
    own_fields: ClassVar[frozenset[str]] = frozenset({
        "host", "port", "metrics_port", "rate_limit_per_minute", "nats_password",
        "cors_allow_origins", *(f"{service}_addr" for service in SERVICES)})

    host: str = "127.0.0.1"
    port: int = 8080
    metrics_port: int = 0
    # Sign-in attempts (login, token refresh) one source address may make per minute;
    # beyond them 429 with Retry-After (identity also limits attempts per account).
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Origins whose pages may call the API (CORS), comma-separated, e.g.
    # "https://portal.example.com"; empty (the default): no cross-origin access.
    cors_allow_origins: str = ""
    identity_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['identity']}"
    registration_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['registration']}"
    order_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['order']}"
    flow_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['flow']}"
    incentive_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['incentive']}"
    engagement_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['engagement']}"
    jwt_public_key_file: Path
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    tracing: Tracing = "off"
    # Optional: with it the gateway refuses a deactivated user's token at once
    # (shared/revocation.py); without it the services still refuse it.
    nats_url: str = ""
    nats_password: SecretStr = SecretStr("")

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (part.strip() for part in value.split(","))):
            if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"{origin!r} is not an origin like https://host[:port]")
        return value

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(filter(None, (part.strip() for part in self.cors_allow_origins.split(","))))

    @property
    def service_addrs(self) -> dict[str, str]:
        return {service: getattr(self, f"{service}_addr") for service in SERVICES}


def default_sqlite_url(service: str, var_dir: Path | str = "var") -> str:
    return f"sqlite+aiosqlite:///{Path(var_dir).resolve()}/{service}.db"
