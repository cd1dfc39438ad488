"""The one place the incentive service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.adapters.orm import inbox_table, outbox_table
from services.incentive.api.grpc import IncentiveServicer
from services.incentive.consumers.subscriptions import subscriptions
from services.incentive.domain.commission import CommissionRule
from services.incentive.service import IncentiveService
from services.incentive.settings import IncentiveSettings
from shared.host import GrpcService, Wiring
from shared.platform import start_platform

Settings = IncentiveSettings
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: IncentiveSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table)
    rule = CommissionRule(settings.commission_rate_bps)
    service = IncentiveService(platform.db, platform.outbox, platform.scopes, rule)
    return platform.wiring(
        GrpcService(incentive_pb2_grpc.add_IncentiveServiceServicer_to_server,
                    IncentiveServicer(service),
                    incentive_pb2.DESCRIPTOR.services_by_name["IncentiveService"].full_name),
        workers=[platform.consumers(inbox_table, subscriptions(service)).run],
    )
