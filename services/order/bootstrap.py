"""The one place the order service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

import grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from services.order.adapters.identity import DealerTiers
from services.order.adapters.orm import inbox_table, outbox_table
from services.order.api.grpc import OrderServicer
from services.order.consumers.subscriptions import subscriptions
from services.order.service import OrderService
from shared.bus.connection import connect
from shared.bus.consumer import ConsumerRunner
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.config import ServiceSettings
from shared.db import Database
from shared.host import GrpcService, Wiring
from shared.revocation import IdentityEvents, RevocationList
from shared.scope import ScopeResolver

SERVICE = "order"
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ServiceSettings) -> Wiring:
    options = settings.options
    db = Database(settings.database_url)
    nc = await connect(settings.nats_url, f"qudao-{SERVICE}")
    js = nc.jetstream()
    await ensure_streams(js, [SERVICE])
    outbox = Outbox(outbox_table, SERVICE)
    relay = OutboxRelay(db, outbox, js)
    identity = grpc.aio.insecure_channel(settings.identity_addr)
    scopes = ScopeResolver(identity)
    # Deactivated users' tokens fail at once; identity events clear cached scopes.
    revocations = RevocationList()
    identity_events = IdentityEvents(nc, revocations, [scopes.invalidate])
    await identity_events.start()
    service = OrderService(
        db, outbox, scopes,
        DealerTiers(identity, ttl_seconds=float(options.get("tier_cache_seconds", 60))),
        default_company=options.get("default_selling_company", "default"),
        currency=options.get("currency", "CNY"),
    )
    consumers = ConsumerRunner(
        db, nc, inbox_table, subscriptions(service),
        max_deliveries=int(options.get("max_deliveries", 5)),
        ack_wait=float(options.get("ack_wait_seconds", 30)),
    )

    async def close_channels() -> None:
        await identity_events.stop()
        await identity.close()

    return Wiring(
        db=db,
        nats=nc,
        services=[GrpcService(order_pb2_grpc.add_OrderServiceServicer_to_server,
                              OrderServicer(service),
                              order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name)],
        workers=[relay.run, consumers.run],
        public_methods=frozenset({"/qudao.order.v1.OrderService/Ping"}),
        on_stop=[close_channels],
        is_revoked=revocations.is_revoked,
    )
