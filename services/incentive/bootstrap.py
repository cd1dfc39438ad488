"""The one place the incentive service's real adapters are wired."""

from __future__ import annotations

from pathlib import Path

from qudao.incentive.v1 import incentive_pb2, incentive_pb2_grpc

from services.incentive.adapters.orm import inbox_table, outbox_table
from services.incentive.api.grpc import IncentiveServicer
from services.incentive.consumers.subscriptions import subscriptions
from services.incentive.domain.commission import DEFAULT_COMMISSION_RATE_BPS, CommissionRule
from services.incentive.service import IncentiveService
from shared.config import ServiceSettings
from shared.host import GrpcService, Wiring
from shared.platform import start_platform

SERVICE = "incentive"
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ServiceSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table)
    rule = CommissionRule(int(settings.options.get("commission_rate_bps",
                                                   DEFAULT_COMMISSION_RATE_BPS)))
    service = IncentiveService(platform.db, platform.outbox, platform.scopes, rule)
    return platform.wiring(
        GrpcService(incentive_pb2_grpc.add_IncentiveServiceServicer_to_server,
                    IncentiveServicer(service),
                    incentive_pb2.DESCRIPTOR.services_by_name["IncentiveService"].full_name),
        workers=[platform.consumers(inbox_table, subscriptions(service)).run],
    )
