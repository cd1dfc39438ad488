"""The one place the identity service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity.adapters.orm import outbox_table
from services.identity.api.grpc import IdentityServicer
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from shared.auth import TokenIssuer
from shared.bus.connection import connect
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.db import Database
from shared.host import GrpcService, Wiring
from shared.revocation import IdentityEvents

Settings = IdentitySettings
SERVICE = Settings.process
MIGRATIONS = Path(__file__).parent / "migrations"
PUBLIC_METHODS = frozenset({
    "/qudao.identity.v1.IdentityService/Login",
    "/qudao.identity.v1.IdentityService/RefreshToken",
    "/qudao.identity.v1.IdentityService/Logout",
})


async def build(settings: IdentitySettings) -> Wiring:
    issuer = TokenIssuer(settings.jwt_private_key_file.read_bytes(),
                         ttl_seconds=settings.access_token_ttl_seconds)
    db = Database(settings.database_url)
    nc = await connect(settings.nats_url, f"qudao-{SERVICE}")
    js = nc.jetstream()
    await ensure_streams(js, [SERVICE], settings.nats_stream_replicas)
    outbox = Outbox(outbox_table, SERVICE)
    hasher = PasswordHasher(time_cost=settings.argon2_time_cost,
                            memory_cost=settings.argon2_memory_kib,
                            parallelism=settings.argon2_parallelism)
    service = IdentityService(db, outbox, issuer, hasher)
    if settings.bootstrap_admin_password:
        await service.ensure_bootstrap(settings.bootstrap_admin_username,
                                       settings.bootstrap_admin_password)
    await service.load_revocations()
    # Another identity replica's change clears this replica's cached scopes and dealer
    # facts too (any identity event: tag changes included).
    identity_events = IdentityEvents(nc, service.revocations, [service.invalidate_scopes],
                                     change_prefixes=("qudao.identity.",))
    await identity_events.start()
    return Wiring(
        db=db,
        nats=nc,
        services=[GrpcService(identity_pb2_grpc.add_IdentityServiceServicer_to_server,
                              IdentityServicer(service),
                              identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name)],
        workers=[OutboxRelay(db, outbox, js).run],
        public_methods=PUBLIC_METHODS,
        is_revoked=service.is_revoked,
        on_stop=[identity_events.stop],
    )
