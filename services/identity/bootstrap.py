"""The one place the identity service's real adapters are wired.

Identity starts differently from the other services (no ``shared.platform``): it
resolves scopes itself rather than asking itself over gRPC, and it signs the tokens the
others verify. Like them, it refuses revoked tokens at once and learns of another
replica's changes from its own events (which also clear its scope cache)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from argon2 import PasswordHasher
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc

from services.identity.adapters.caches import InProcessScopeCache
from services.identity.adapters.orm import client_requests_table, outbox_table
from services.identity.adapters.passwords import Argon2Passwords
from services.identity.adapters.sheets import XlsxSheets
from services.identity.adapters.uow import SqlIdentityUnitOfWork
from services.identity.api.grpc import IdentityServicer
from services.identity.settings import IdentitySettings
from services.identity.usecases import sessions, users
from services.identity.usecases.ports import Deps
from shared.auth import TokenIssuer
from shared.bus.connection import connect_in_background, stop_connecting
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.clock import SystemClock
from shared.db import Database
from shared.events.catalog import all_events
from shared.events.identity import USER_LOGGED_IN
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.revocation import IdentityEvents, RevocationList
from shared.workers import every

Settings = IdentitySettings
SERVICE = Settings.process
MIGRATIONS = Path(__file__).parent / "migrations"
# Identity's events that may change a scope or an audience: all but what dealers' users
# do with notices and materials, and their logins (a read or a login clearing the cache
# would cost every query).
ORG_CHANGES = tuple(sorted(event.subject for event in all_events()
                           if event.producer == SERVICE
                           and event.entity not in ("notice", "material")
                           and event is not USER_LOGGED_IN))
PUBLIC_METHODS = frozenset({
    "/qudao.identity.v1.IdentityService/Login",
    "/qudao.identity.v1.IdentityService/RefreshToken",
    "/qudao.identity.v1.IdentityService/Logout",
})


async def build(settings: IdentitySettings) -> Wiring:
    db = Database(settings.database_url)
    # Connected in the background: identity signs users in while NATS is away.
    nc = connect_in_background(settings, once_connected=[
        lambda: ensure_streams(nc.jetstream(), [SERVICE], settings.nats_stream_replicas)])
    js = nc.jetstream()
    outbox = Outbox(outbox_table, SERVICE)
    scope_cache = InProcessScopeCache()
    revocations = RevocationList()
    deps = Deps(
        uow=partial(SqlIdentityUnitOfWork, db, outbox, on_change=scope_cache.invalidate),
        clock=SystemClock(),
        ids=RandomIds(),
        passwords=Argon2Passwords(PasswordHasher(time_cost=settings.argon2_time_cost,
                                                 memory_cost=settings.argon2_memory_kib,
                                                 parallelism=settings.argon2_parallelism)),
        tokens=TokenIssuer(settings.jwt_private_key_file.read_bytes(),
                           ttl_seconds=settings.access_token_ttl_seconds),
        revocations=revocations,
        scope_cache=scope_cache,
        sheets=XlsxSheets(),
    )
    if settings.bootstrap_admin_password:
        await users.ensure_bootstrap_admin(
            settings.bootstrap_admin_username, settings.bootstrap_admin_password,
            uow=deps.uow(), passwords=deps.passwords, clock=deps.clock, ids=deps.ids)
    await users.load_revocations(uow=deps.uow(), clock=deps.clock, revocations=revocations)
    # Revocations recorded by any replica (replayed from the stream at start), and any
    # change another replica commits clears this replica's scope cache.
    identity_events = IdentityEvents(nc, revocations, [scope_cache.invalidate],
                                     change_prefixes=ORG_CHANGES)
    await identity_events.start()
    return Wiring(
        db=db,
        nats=nc,
        services=[GrpcService(identity_pb2_grpc.add_IdentityServiceServicer_to_server,
                              IdentityServicer(deps),
                              identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name)],
        workers=[OutboxRelay(db, outbox, js).run,
                 every(600, lambda: sessions.forget_sign_ins(uow=deps.uow(), clock=deps.clock),
                       "sign_in_records")],
        public_methods=PUBLIC_METHODS,
        is_revoked=revocations.is_revoked,
        client_requests=client_requests_table,
        on_stop=[identity_events.stop, lambda: stop_connecting(nc)],
    )
