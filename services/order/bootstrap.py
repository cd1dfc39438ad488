"""The one place the order service's real adapters are wired (options:
services/order/settings.py): the use cases' collaborators (``Deps``), the servicer and
the consumers."""

from __future__ import annotations

import gc
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
    # Start-up's long-lived objects (modules, mappers, descriptors) frozen: the cyclic
    # collector's full passes, which a bulk ingest of many small objects triggers every
    # few thousand lines, then stop walking them (a sixth of the ingest's CPU). A young
    # generation of 20,000 objects instead of 700: a stream message's lines are not
    # promoted, and walked again, a few hundred at a time (the collector's CPU in an
    # ingest of 200,000 lines 0.8 s → 0.3 s; each young pass stays around a millisecond).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    return platform.wiring(
        GrpcService(order_pb2_grpc.add_OrderServiceServicer_to_server, OrderServicer(deps),
                    order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name),
        workers=[platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run],
        public_methods=frozenset({"/qudao.order.v1.OrderService/Ping"}),
    )
