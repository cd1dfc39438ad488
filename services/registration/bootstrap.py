"""The one place the registration service's real adapters are wired.

Its API is sketched in protos/qudao/registration/v1 and answers UNIMPLEMENTED until the registration
issue builds it; the service already migrates, connects to the bus and reports health."""

from __future__ import annotations

from pathlib import Path

from qudao.registration.v1 import registration_pb2, registration_pb2_grpc

from services.registration.adapters.orm import outbox_table
from shared.bus.connection import connect
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.config import ServiceSettings
from shared.db import Database
from shared.host import GrpcService, Wiring

SERVICE = "registration"
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
            registration_pb2_grpc.add_RegistrationServiceServicer_to_server,
            registration_pb2_grpc.RegistrationServiceServicer(),
            registration_pb2.DESCRIPTOR.services_by_name["RegistrationService"].full_name)],
        workers=[OutboxRelay(db, outbox, js).run],
    )
