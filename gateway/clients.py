"""gRPC channels and stubs to every service, with the caller's token and request id
passed on as metadata."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qudao.engagement.v1 import engagement_pb2_grpc
from qudao.flow.v1 import flow_pb2_grpc
from qudao.identity.v1 import identity_pb2_grpc
from qudao.incentive.v1 import incentive_pb2_grpc
from qudao.order.v1 import order_pb2_grpc
from qudao.registration.v1 import registration_pb2_grpc

from shared import tracing
from shared.context import outgoing_metadata

CALL_TIMEOUT_SECONDS = 30.0


class Clients:
    def __init__(self, addrs: dict[str, str]) -> None:
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        self.channels = {name: grpc.aio.insecure_channel(addr, options=options)
                         for name, addr in addrs.items()}
        self.identity = identity_pb2_grpc.IdentityServiceStub(self.channels["identity"])
        self.order = order_pb2_grpc.OrderServiceStub(self.channels["order"])
        self.incentive = incentive_pb2_grpc.IncentiveServiceStub(self.channels["incentive"])
        self.registration = registration_pb2_grpc.RegistrationServiceStub(
            self.channels["registration"])
        self.flow = flow_pb2_grpc.FlowServiceStub(self.channels["flow"])
        self.engagement = engagement_pb2_grpc.EngagementServiceStub(self.channels["engagement"])

    async def health(self, timeout: float = 1.0) -> dict[str, str]:
        async def check(name: str, channel: grpc.aio.Channel) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                return name, health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            except grpc.aio.AioRpcError as exc:
                return name, "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else (
                    exc.code().name)

        results = await asyncio.gather(*(check(n, c) for n, c in self.channels.items()))
        return dict(results)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


async def call(method, request, timeout: float = CALL_TIMEOUT_SECONDS, *,
               metadata: tuple[tuple[str, str], ...] = ()):
    """Call a unary RPC as the current caller (with ``metadata`` besides); errors
    propagate as AioRpcError."""
    metadata = (*outgoing_metadata(), *metadata)
    if not tracing.enabled():
        return await method(request, metadata=metadata, timeout=timeout)
    name = getattr(method, "_method", b"").decode().lstrip("/") or "rpc"
    with tracing.span(name, tracing.SpanKind.CLIENT, attributes={"rpc.system": "grpc"}):
        return await method(request, metadata=metadata, timeout=timeout)
