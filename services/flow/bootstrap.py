"""The one place the flow service's real adapters are wired (options:
services/flow/settings.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from functools import partial
from pathlib import Path

from qudao.flow.v1 import flow_pb2, flow_pb2_grpc

from services.flow.adapters.files import SheetWriter, StoredFileReader
from services.flow.adapters.name_index import CustomerDirectory
from services.flow.adapters.orm import inbox_table, outbox_table
from services.flow.adapters.replay import ReplaySource, StreamReplayer
from services.flow.adapters.uow import SqlFlowUnitOfWork
from services.flow.api.grpc import FlowServicer
from services.flow.consumers import REPLAY, SUBSCRIPTIONS
from services.flow.settings import FlowSettings
from services.flow.usecases.ports import Deps, FlowOptions
from services.flow.usecases.validate import validate_next
from shared.clock import SystemClock
from shared.host import GrpcService, Wiring
from shared.ids import RandomIds
from shared.logging import get_logger
from shared.platform import start_platform

Settings = FlowSettings
MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def build(settings: FlowSettings) -> Wiring:
    platform = await start_platform(settings, outbox_table)
    uow = partial(SqlFlowUnitOfWork, platform.db, platform.outbox)
    options = FlowOptions(
        worker_id=f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
        fuzzy_threshold_bps=settings.fuzzy_threshold_bps,
        authorization_lines=settings.authorization_line_set(),
        max_file_bytes=settings.max_file_bytes, max_rows=settings.max_rows,
        max_columns=settings.max_columns, chunk_rows=settings.chunk_rows,
        lease_seconds=settings.lease_seconds,
        event_rows_per_part=settings.event_rows_per_part)
    wakeup = asyncio.Event()
    directory = CustomerDirectory(uow)
    holder: list[Deps] = []
    replayer = StreamReplayer(
        platform.js, inbox_table,
        {name: ReplaySource(s.durable, s.events, s.handler) for name, s in REPLAY.items()},
        lambda: holder[0])
    deps = Deps(
        uow=uow,
        uow_in=lambda session: SqlFlowUnitOfWork(platform.db, platform.outbox, joined=session),
        clock=SystemClock(), ids=RandomIds(), scopes=platform.scopes,
        reader=StoredFileReader(uow, max_rows=settings.max_rows,
                                max_columns=settings.max_columns,
                                scratch_dir=settings.scratch_dir or None),
        reports=SheetWriter(), directory=directory, replayer=replayer, options=options,
        wake=wakeup.set)
    holder.append(deps)
    log.info("flow_customers_loaded", customers=await directory.refresh())

    async def validator() -> None:
        """Validate queued uploads one at a time; woken at once by a new upload on this
        replica, polling for other replicas' uploads and abandoned ones."""
        while True:
            if await validate_next(deps):
                continue
            wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), settings.validator_poll_seconds)

    return platform.wiring(
        GrpcService(flow_pb2_grpc.add_FlowServiceServicer_to_server, FlowServicer(deps),
                    flow_pb2.DESCRIPTOR.services_by_name["FlowService"].full_name),
        workers=[platform.consumers(inbox_table, SUBSCRIPTIONS, deps).run, validator],
    )
