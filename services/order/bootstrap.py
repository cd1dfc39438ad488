"""The one place the order service's real adapters are wired (options:
services/order/settings.py): the use cases' collaborators (``Deps``), the servicer and
the consumers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from qudao.order.v1 import order_pb2, order_pb2_grpc

from services.order.adapters import export
from services.order.adapters.identity import DealerTiers
from services.order.adapters.orm import client_requests_table, inbox_table, outbox_table
from services.order.adapters.uow import SqlOrderUnitOfWork
from services.order.api.grpc import OrderServicer
from services.order.consumers import SUBSCRIPTIONS
from services.order.settings import OrderSettings
from services.order.usecases.ports import Deps
from shared.clock import SystemClock
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.platform import start_platform

Settings = OrderSettings
MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: OrderSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table, client_requests_table)
    deps = Deps(
        uow=partial(SqlOrderUnitOfWork, platform.db, platform.outbox),
        uow_in=lambda session: SqlOrderUnitOfWork(platform.db, platform.outbox,
                                                  joined=session),
        clock=SystemClock(),
        ids=RandomIds(),
        scopes=platform.scopes,
        tiers=DealerTiers(platform.identity, ttl_seconds=settings.tier_cache_seconds),
        export=export,
        default_company=settings.default_selling_company,
        currency=settings.currency,
    )
    return platform.wiring(
        GrpcService(order_pb2_grpc.add_OrderServiceServicer_to_server, OrderServicer(deps),
                    order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name),
        workers=[platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run],
        public_methods=frozenset({"/qudao.order.v1.OrderService/Ping"}),
    )
