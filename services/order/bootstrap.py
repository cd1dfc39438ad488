"""The one place the order service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

import grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from services.order.adapters.orm import outbox_table
from services.order.api.grpc import OrderServicer
from services.order.service import OrderService
from shared.bus.connection import connect
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.config import ServiceSettings
from shared.db import Database
from shared.host import GrpcService, Wiring
from shared.scope import ScopeResolver

SERVICE = "order"
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ServiceSettings) -> Wiring:
    db = Database(settings.database_url)
    nc = await connect(settings.nats_url, f"qudao-{SERVICE}")
    js = nc.jetstream()
    await ensure_streams(js, [SERVICE])
    outbox = Outbox(outbox_table, SERVICE)
    relay = OutboxRelay(db, outbox, js)
    identity = grpc.aio.insecure_channel(settings.identity_addr)
    service = OrderService(db, outbox, ScopeResolver(identity))

    async def close_channels() -> None:
        await identity.close()

    return Wiring(
        db=db,
        nats=nc,
        services=[GrpcService(order_pb2_grpc.add_OrderServiceServicer_to_server,
                              OrderServicer(service),
                              order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name)],
        workers=[relay.run],
        public_methods=frozenset({"/qudao.order.v1.OrderService/Ping"}),
        on_stop=[close_channels],
    )
