"""The one place the registration service's real adapters are wired (options:
services/registration/settings.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from qudao.identity.v1 import identity_pb2_grpc
from qudao.registration.v1 import registration_pb2, registration_pb2_grpc

from services.registration.adapters.name_index import load_index
from services.registration.adapters.orm import inbox_table, outbox_table
from services.registration.api.grpc import RegistrationServicer
from services.registration.consumers import SUBSCRIPTIONS
from services.registration.service import RegistrationService
from services.registration.settings import RegistrationSettings
from shared.host import GrpcService, Wiring
from shared.logging import get_logger
from shared.names.index import NameIndex
from shared.platform import start_platform

Settings = RegistrationSettings
MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def build(settings: RegistrationSettings) -> Wiring:
    policy = settings.policy()
    platform = await start_platform(settings, outbox_table)
    db = platform.db
    index = NameIndex()
    loaded = await load_index(index, db)
    # The index is millions of long-lived objects: keep them out of the cyclic garbage
    # collector's full passes, which would otherwise stall requests for a long time.
    gc.collect()
    gc.freeze()
    log.info("name_index_loaded", customers=loaded)
    service = RegistrationService(db, platform.outbox, platform.scopes,
                                  identity_pb2_grpc.IdentityServiceStub(platform.identity),
                                  index, policy)
    refresh = settings.index_refresh_seconds

    async def refresher() -> None:
        await service.run_index_refresher(refresh)

    return platform.wiring(
        GrpcService(
            registration_pb2_grpc.add_RegistrationServiceServicer_to_server,
            RegistrationServicer(service),
            registration_pb2.DESCRIPTOR.services_by_name["RegistrationService"].full_name),
        workers=[platform.consumers(inbox_table, SUBSCRIPTIONS, service).run,
                 service.run_scheduler, refresher],
    )
