"""The one place the registration service's real adapters are wired (options:
services/registration/settings.py): the use cases' collaborators (``Deps``), the
servicer, the consumers, and the workers that run use cases on a timer (the scheduler
of what time changes, the name index refresher)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from qudao.registration.v1 import registration_pb2, registration_pb2_grpc

from services.registration.adapters import letters, places
from services.registration.adapters.identity import IdentityDealers
from services.registration.adapters.orm import client_requests_table, inbox_table, outbox_table
from services.registration.adapters.uow import SqlRegistrationUnitOfWork
from services.registration.api.grpc import RegistrationServicer
from services.registration.consumers import SUBSCRIPTIONS
from services.registration.settings import RegistrationSettings
from services.registration.usecases import names, scheduler
from services.registration.usecases.ports import Deps
from shared.clock import SystemClock
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.logging import get_logger
from shared.names.index import NameIndex
from shared.platform import start_platform
from shared.workers import every

Settings = RegistrationSettings
MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def build(settings: RegistrationSettings) -> Wiring:
    policy = settings.policy()
    platform = await start_platform(settings, outbox_table, client_requests_table)
    deps = Deps(
        uow=partial(SqlRegistrationUnitOfWork, platform.db, platform.outbox),
        uow_in=lambda session: SqlRegistrationUnitOfWork(platform.db, platform.outbox,
                                                         joined=session),
        clock=SystemClock(),
        ids=RandomIds(),
        scopes=platform.scopes,
        identity=IdentityDealers(platform.identity),
        names=NameIndex(),
        places=places,
        letters=letters,
        policy=policy,
    )
    loaded = await names.load_names(uow=deps.uow(), names=deps.names, clock=deps.clock)
    # The index is millions of long-lived objects: shared.runner freezes them once the
    # service is built, out of the cyclic collector's full passes.
    log.info("name_index_loaded", customers=loaded)
    return platform.wiring(
        GrpcService(
            registration_pb2_grpc.add_RegistrationServiceServicer_to_server,
            RegistrationServicer(deps),
            registration_pb2.DESCRIPTOR.services_by_name["RegistrationService"].full_name),
        workers=[
            platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run,
            every(policy.scheduler_interval_seconds,
                  partial(scheduler.run_due, uow=deps.uow(), clock=deps.clock), "scheduler"),
            every(settings.index_refresh_seconds,
                  partial(names.refresh_names, uow=deps.uow(), names=deps.names,
                          clock=deps.clock), "name_index_refresh", first_wait=True),
        ],
    )
