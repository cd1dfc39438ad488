"""Every service speaks the standard gRPC conventions: health, reflection, and rich error
details a client can read."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from qudao.order.v1 import order_pb2, order_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

API = {
    "identity": "qudao.identity.v1.IdentityService",
    "registration": "qudao.registration.v1.RegistrationService",
    "order": "qudao.order.v1.OrderService",
    "flow": "qudao.flow.v1.FlowService",
    "incentive": "qudao.incentive.v1.IncentiveService",
    "engagement": "qudao.engagement.v1.EngagementService",
}


@pytest.mark.parametrize("service", sorted(API))
async def test_health_and_reflection(shared_suite, service):
    address = f"127.0.0.1:{shared_suite.ports[service]}"
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", API[service]):
            response = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert response.status == health_pb2.HealthCheckResponse.SERVING
    def list_services() -> list[str]:
        # The reflection client is synchronous: keep it off the loop that serves it.
        with grpc.insecure_channel(address) as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    services = await asyncio.to_thread(list_services)
    assert {API[service], "grpc.health.v1.Health"} <= set(services)


async def test_errors_carry_field_violations_and_reason(shared_suite, shared_world):
    address = f"127.0.0.1:{shared_suite.ports['order']}"
    token = shared_world.dealers[0].token
    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitOrder(order_pb2.SubmitOrderRequest(
                lines=[order_pb2.OrderLineInput(product_code="A-001", quantity=0)]),
                metadata=(("authorization", f"Bearer {token}"),))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = {d.TypeName(): d for d in rpc_status.from_call(caught.value).details}
        bad_request = error_details_pb2.BadRequest()
        details["google.rpc.BadRequest"].Unpack(bad_request)
        assert [v.field for v in bad_request.field_violations] == ["lines[0].quantity"]
        info = error_details_pb2.ErrorInfo()
        details["google.rpc.ErrorInfo"].Unpack(info)
        assert info.domain == "qudao.order"

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListOrders(order_pb2.ListOrdersRequest())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
