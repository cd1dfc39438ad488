"""The one place the flow service's real adapters are wired.

Its API is sketched in protos/qudao/flow/v1 and answers UNIMPLEMENTED until the flow
issue builds it; the service already migrates, connects to the bus and reports health."""

from __future__ import annotations

from pathlib import Path

from qudao.flow.v1 import flow_pb2, flow_pb2_grpc

from services.flow.adapters.orm import outbox_table
from shared.bus.connection import connect
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.config import ServiceSettings
from shared.db import Database
from shared.host import GrpcService, Wiring

SERVICE = "flow"
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ServiceSettings) -> Wiring:
    db = Database(settings.database_url)
    nc = await connect(settings.nats_url, f"qudao-{SERVICE}")
    js = nc.jetstream()
    await ensure_streams(js, [SERVICE])
    outbox = Outbox(outbox_table, SERVICE)
    return Wiring(
        db=db,
        nats=nc,
        services=[GrpcService(
            flow_pb2_grpc.add_FlowServiceServicer_to_server,
            flow_pb2_grpc.FlowServiceServicer(),
            flow_pb2.DESCRIPTOR.services_by_name["FlowService"].full_name)],
        workers=[OutboxRelay(db, outbox, js).run],
    )
