"""The one place the flow service's real adapters are wired.

Its API is sketched in protos/qudao/flow/v1 and answers UNIMPLEMENTED until the flow
issue builds it; the service already migrates, connects to the bus and reports health."""

from __future__ import annotations

from pathlib import Path

from qudao.flow.v1 import flow_pb2, flow_pb2_grpc

from services.flow.adapters.orm import outbox_table
from services.flow.settings import FlowSettings
from shared.host import GrpcService, Wiring
from shared.platform import start_platform

Settings = FlowSettings
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: FlowSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table)
    return platform.wiring(GrpcService(
        flow_pb2_grpc.add_FlowServiceServicer_to_server, flow_pb2_grpc.FlowServiceServicer(),
        flow_pb2.DESCRIPTOR.services_by_name["FlowService"].full_name))
