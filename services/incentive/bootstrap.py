"""The one place the incentive service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

import grpc
from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.adapters.orm import inbox_table, outbox_table
from services.incentive.api.grpc import IncentiveServicer
from services.incentive.consumers.subscriptions import subscriptions
from services.incentive.domain.commission import DEFAULT_COMMISSION_RATE_BPS, CommissionRule
from services.incentive.service import IncentiveService
from shared.bus.connection import connect
from shared.bus.consumer import ConsumerRunner
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.config import ServiceSettings
from shared.db import Database
from shared.host import GrpcService, Wiring
from shared.revocation import IdentityEvents, RevocationList
from shared.scope import ScopeResolver

SERVICE = "incentive"
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ServiceSettings) -> Wiring:
    options = settings.options
    db = Database(settings.database_url)
    nc = await connect(settings.nats_url, f"qudao-{SERVICE}")
    js = nc.jetstream()
    await ensure_streams(js, [SERVICE])
    outbox = Outbox(outbox_table, SERVICE)
    identity = grpc.aio.insecure_channel(settings.identity_addr)
    scopes = ScopeResolver(identity)
    # Deactivated users' tokens fail at once; identity events clear cached scopes.
    revocations = RevocationList()
    identity_events = IdentityEvents(nc, revocations, [scopes.invalidate])
    await identity_events.start()
    rule = CommissionRule(int(options.get("commission_rate_bps", DEFAULT_COMMISSION_RATE_BPS)))
    service = IncentiveService(db, outbox, scopes, rule)
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
        services=[GrpcService(
            incentive_pb2_grpc.add_IncentiveServiceServicer_to_server,
            IncentiveServicer(service),
            incentive_pb2.DESCRIPTOR.services_by_name["IncentiveService"].full_name)],
        workers=[OutboxRelay(db, outbox, js).run, consumers.run],
        on_stop=[close_channels],
        is_revoked=revocations.is_revoked,
    )
