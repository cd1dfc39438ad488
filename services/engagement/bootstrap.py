"""The one place the engagement service's real adapters are wired."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from qudao.engagement.v1 import engagement_pb2, engagement_pb2_grpc

from services.engagement.adapters.orm import client_requests_table, inbox_table, outbox_table
from services.engagement.adapters.uow import SqlEngagementUnitOfWork
from services.engagement.api.grpc import EngagementServicer
from services.engagement.consumers import SUBSCRIPTIONS
from services.engagement.settings import EngagementSettings
from services.engagement.usecases import health, sop
from services.engagement.usecases.ports import Deps
from shared.clock import Clock, SystemClock
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.platform import start_platform
from shared.workers import every

Settings = EngagementSettings
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: EngagementSettings, clock: Clock | None = None) -> Wiring:
    """``clock``: the time the service lives in (tests move it past deadlines)."""
    platform = await start_platform(settings, outbox_table, client_requests_table)
    deps = Deps(
        uow=partial(SqlEngagementUnitOfWork, platform.db, platform.outbox),
        uow_in=lambda session: SqlEngagementUnitOfWork(platform.db, platform.outbox,
                                                       joined=session),
        clock=clock or SystemClock(),
        ids=RandomIds(),
        scopes=platform.scopes,
    )
    return platform.wiring(
        GrpcService(engagement_pb2_grpc.add_EngagementServiceServicer_to_server,
                    EngagementServicer(deps),
                    engagement_pb2.DESCRIPTOR.services_by_name["EngagementService"].full_name),
        workers=[
            platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run,
            every(settings.task_sweep_seconds,
                  lambda: sop.sweep_overdue(uow=deps.uow(), clock=deps.clock, ids=deps.ids),
                  "task_sweep"),
            every(settings.health_sweep_seconds,
                  lambda: health.sweep_health(uow=deps.uow(), clock=deps.clock, ids=deps.ids),
                  "health_sweep", first_wait=True),
        ],
    )
