"""One trace per user action across the suite: the gateway's request, the gRPC call it
makes, the outbox row's publish by the relay and the consumer that handles the event,
carried in gRPC metadata, the envelope and the NATS headers. Tracing is off by default
and costs nothing then."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing
from tests.harness import eventually
from tests.incentive.support import orders_accrue_at_once
from tests.world import build_world


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure("tests", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.disable()


async def test_an_order_is_one_trace_from_gateway_to_consumer(spans, suite):
    world = await build_world(suite, dealers=1)
    await orders_accrue_at_once(suite, world)
    spans.clear()
    async with suite.client(world.dealers[0].token) as client:
        response = await client.post("/api/v1/orders", json={
            "lines": [{"product_code": "A-001", "quantity": 1}]})
    assert response.status_code == 201, response.text

    def names_by_trace():
        traces: dict[int, set[str]] = {}
        for span in spans.get_finished_spans():
            traces.setdefault(span.context.trace_id, set()).add(span.name)
        return traces

    def complete():
        for names in names_by_trace().values():
            # Approved at once within the credit limit: incentive accrues its commission.
            if "HTTP POST /api/v1/orders" in names and "consume incentive-order" in names:
                return names
        return None

    names = await eventually(complete, timeout=15)
    assert "qudao.order.v1.OrderService/SubmitOrder" in names
    assert "publish qudao.order.v1.OrderSubmitted" in names
    assert "publish qudao.order.v1.OrderApproved" in names


def test_tracing_is_off_by_default():
    assert not tracing.enabled()
    assert tracing.current_traceparent() == ""
