"""OpenTelemetry tracing across the suite: gateway request → gRPC calls → the outbox row
→ the NATS publish → the consumer that handles the event, one trace.

Off by default: every hook below returns at once and nothing is imported beyond the API.
``QUDAO_TRACING=otlp`` turns it on (spans exported over OTLP/HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT``, default http://localhost:4318; the OpenTelemetry SDK's
own ``OTEL_*`` variables apply); ``console`` prints spans to stderr.

The context travels as a W3C ``traceparent``: in gRPC metadata, in the event envelope
(written with the outbox row, so the trace survives the relay's delay and a restart),
and in the NATS message headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None

__all__ = ["SpanKind", "configure", "current_traceparent", "enabled", "span"]


def enabled() -> bool:
    return _tracer is not None


def configure(service: str, mode: str = "off", exporter: Any = None) -> None:
    """Turn tracing on for this process (``mode`` "otlp" or "console", or an explicit
    span exporter, as tests do); "off" leaves it off."""
    global _tracer
    if exporter is None and mode == "off":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": f"qudao-{service}"}))
        trace.set_tracer_provider(provider)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif mode == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = provider.get_tracer("qudao")


def disable() -> None:
    """Back to off (tests that turned it on)."""
    global _tracer
    _tracer = None


def context_from(carrier: Mapping[str, str] | None, traceparent: str = ""):
    """The remote parent carried in headers/metadata, or in a bare traceparent."""
    if traceparent:
        carrier = {TRACEPARENT: traceparent}
    return _propagator.extract(carrier or {})


@contextlib.contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL, *, parent: Any = None,
         attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span made current for the block (no-op while tracing is off); an exception
    marks it failed. ``parent`` is a context from ``context_from``."""
    if _tracer is None:
        yield None
        return
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with _tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                           record_exception=True,
                                           set_status_on_exception=False) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)


def set_status(current: Any, failed: bool, description: str = "") -> None:
    if current is not None and failed:
        current.set_status(Status(StatusCode.ERROR, description))


def current_traceparent() -> str:
    """The current span as a W3C traceparent ("" while off or outside a span)."""
    if _tracer is None:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT, "")
