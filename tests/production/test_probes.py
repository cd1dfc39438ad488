"""Probes that do not turn a blip into an outage: while NATS is away every service is
not ready (out of the Service's endpoints) but alive (not restarted), and the gateway
stays ready and alive: its readiness is its own, not the services'."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.host import LIVENESS
from shared.settings import SERVICES
from tests.harness import eventually

SERVING = health_pb2.HealthCheckResponse.SERVING


async def statuses(suite, service_name: str) -> dict[str, int]:
    result = {}
    for service in SERVICES:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ports[service]}") as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service_name), timeout=2)
            result[service] = response.status
    return result


async def test_liveness_holds_and_readiness_follows_dependencies(suite):
    async with suite.client() as client:
        assert (await client.get("/readyz/local")).status_code == 200
        await asyncio.to_thread(suite.nats.stop)

        async def none_ready():
            return set((await statuses(suite, "")).values()) == {
                health_pb2.HealthCheckResponse.NOT_SERVING}

        await eventually(none_ready, timeout=10)
        assert set((await statuses(suite, LIVENESS)).values()) == {SERVING}
        # The gateway: alive and ready (its own state), while /readyz shows the services.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz/local")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503

        await asyncio.to_thread(suite.nats.start)

        async def all_ready():
            return set((await statuses(suite, "")).values()) == {SERVING}

        await eventually(all_ready, timeout=15)
