"""structlog JSON logging; the request id, principal and event id bound in context
variables appear on every line."""

from __future__ import annotations

import logging
import sys

import structlog

from shared.context import principal_var, request_id_var

# The level configure_logging set: below it a logger's methods do nothing (structlog's
# filtering logger), so a caller may skip building a line that would be dropped.
_level = logging.NOTSET


def _add_request_context(_logger, _method, event_dict):
    if request_id := request_id_var.get():
        event_dict.setdefault("request_id", request_id)
    principal = principal_var.get()
    if principal.subject != "anonymous":
        event_dict.setdefault("principal", principal.subject)
    return event_dict


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """structlog for our own lines; the standard library's loggers (uvicorn, asyncio,
    alembic, grpc, nats) go through the same processors and renderer, so a container's
    output is one JSON object per line."""
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    global _level
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    _level = numeric_level
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        _add_request_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors,
                           structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries' chatter below WARNING stays out unless the suite runs at DEBUG.
    root.setLevel(numeric_level if numeric_level <= logging.DEBUG else
                  max(numeric_level, logging.WARNING))


def enabled_for(level: int) -> bool:
    """Whether lines at ``level`` are written (a check cheaper than calling a logger whose
    method is a no-op, for lines written on every request)."""
    return level >= _level


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
