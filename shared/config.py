"""Settings from environment variables, parsed once at start into one typed object.

Every service reads ``QUDAO_<SERVICE>_<NAME>`` for its own settings and ``QUDAO_<NAME>``
for the suite-wide ones (NATS, JWT keys, log level). The README lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

SERVICES = ("identity", "registration", "order", "flow", "incentive")
DEFAULT_GRPC_PORTS = {
    "identity": 50151,
    "registration": 50152,
    "order": 50153,
    "flow": 50154,
    "incentive": 50155,
}
DEFAULT_METRICS_PORTS = {name: port + 1000 for name, port in DEFAULT_GRPC_PORTS.items()}
GATEWAY_METRICS_PORT = 51150


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names the variable."""


class ServiceSettings(BaseModel):
    service: str
    database_url: str
    grpc_host: str = "127.0.0.1"
    grpc_port: int
    metrics_port: int = 0
    nats_url: str
    jwt_public_key_file: Path
    jwt_private_key_file: Path | None = None
    identity_addr: str = "127.0.0.1:50151"
    log_level: str = "INFO"
    log_format: str = "json"
    # Per-service knobs ("QUDAO_<SERVICE>_OPTION_<NAME>") kept as strings; each service
    # parses its own into a typed object.
    options: dict[str, str] = {}


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    service_addrs: dict[str, str]
    jwt_public_key_file: Path
    metrics_port: int = 0
    log_level: str = "INFO"
    log_format: str = "json"
    rate_limit_per_minute: int = 600
    # Optional: with it the gateway refuses a deactivated user's token at once
    # (shared/revocation.py); without it the services still refuse it.
    nats_url: str = ""


def _env(name: str, default: str | None = None, env: dict[str, str] | None = None) -> str:
    source = os.environ if env is None else env
    value = source.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"missing required environment variable {name}")
    return value


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}") from exc


def default_sqlite_url(service: str, var_dir: Path | str = "var") -> str:
    return f"sqlite+aiosqlite:///{Path(var_dir).resolve()}/{service}.db"


def load_service_settings(service: str, env: dict[str, str] | None = None) -> ServiceSettings:
    if service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}")
    source = dict(os.environ if env is None else env)
    prefix = f"QUDAO_{service.upper()}_"
    option_prefix = prefix + "OPTION_"
    options = {
        key[len(option_prefix):].lower(): value
        for key, value in source.items()
        if key.startswith(option_prefix)
    }
    grpc_port_name = prefix + "GRPC_PORT"
    metrics_port_name = prefix + "METRICS_PORT"
    try:
        return ServiceSettings(
            service=service,
            database_url=_env(prefix + "DATABASE_URL", env=source),
            grpc_host=source.get(prefix + "GRPC_HOST", "127.0.0.1"),
            grpc_port=_int(
                grpc_port_name, source.get(grpc_port_name, str(DEFAULT_GRPC_PORTS[service]))
            ),
            metrics_port=_int(metrics_port_name, source.get(metrics_port_name, "0")),
            nats_url=_env("QUDAO_NATS_URL", env=source),
            jwt_public_key_file=Path(_env("QUDAO_JWT_PUBLIC_KEY_FILE", env=source)),
            jwt_private_key_file=(
                Path(source["QUDAO_JWT_PRIVATE_KEY_FILE"])
                if source.get("QUDAO_JWT_PRIVATE_KEY_FILE")
                else None
            ),
            identity_addr=source.get("QUDAO_IDENTITY_ADDR",
                                     f"127.0.0.1:{DEFAULT_GRPC_PORTS['identity']}"),
            log_level=source.get("QUDAO_LOG_LEVEL", "INFO"),
            log_format=source.get("QUDAO_LOG_FORMAT", "json"),
            options=options,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid settings for {service}: {exc}") from exc


def load_gateway_settings(env: dict[str, str] | None = None) -> GatewaySettings:
    source = dict(os.environ if env is None else env)
    addrs = {
        name: _env(f"QUDAO_GATEWAY_{name.upper()}_ADDR",
                   f"127.0.0.1:{DEFAULT_GRPC_PORTS[name]}", env=source)
        for name in SERVICES
    }
    return GatewaySettings(
        host=source.get("QUDAO_GATEWAY_HOST", "127.0.0.1"),
        port=_int("QUDAO_GATEWAY_PORT", source.get("QUDAO_GATEWAY_PORT", "8080")),
        service_addrs=addrs,
        jwt_public_key_file=Path(_env("QUDAO_JWT_PUBLIC_KEY_FILE", env=source)),
        metrics_port=_int("QUDAO_GATEWAY_METRICS_PORT",
                          source.get("QUDAO_GATEWAY_METRICS_PORT", "0")),
        log_level=source.get("QUDAO_LOG_LEVEL", "INFO"),
        log_format=source.get("QUDAO_LOG_FORMAT", "json"),
        rate_limit_per_minute=_int(
            "QUDAO_GATEWAY_RATE_LIMIT_PER_MINUTE",
            source.get("QUDAO_GATEWAY_RATE_LIMIT_PER_MINUTE", "600"),
        ),
        nats_url=source.get("QUDAO_NATS_URL", ""),
    )
