"""The one place the incentive service's real adapters are wired."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.adapters.identity import IdentityAudiences
from services.incentive.adapters.orm import client_requests_table, inbox_table, outbox_table
from services.incentive.adapters.statements import XlsxStatements
from services.incentive.adapters.uow import SqlIncentiveUnitOfWork
from services.incentive.api.grpc import IncentiveServicer
from services.incentive.consumers import SUBSCRIPTIONS
from services.incentive.settings import IncentiveSettings
from services.incentive.usecases.ports import Deps, Policy
from shared.clock import SystemClock
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.platform import start_platform

Settings = IncentiveSettings
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: IncentiveSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table, client_requests_table)
    deps = Deps(
        uow=partial(SqlIncentiveUnitOfWork, platform.db, platform.outbox),
        uow_in=lambda session: SqlIncentiveUnitOfWork(platform.db, platform.outbox,
                                                      joined=session),
        clock=SystemClock(),
        ids=RandomIds(),
        scopes=platform.scopes,
        policy=Policy(default_rate_bps=settings.commission_rate_bps,
                      default_company=settings.default_selling_company,
                      grace_days=settings.grace_days),
        audiences=IdentityAudiences(platform.identity),
        renderer=XlsxStatements(),
    )
    return platform.wiring(
        GrpcService(incentive_pb2_grpc.add_IncentiveServiceServicer_to_server,
                    IncentiveServicer(deps),
                    incentive_pb2.DESCRIPTOR.services_by_name["IncentiveService"].full_name),
        workers=[platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run],
    )
