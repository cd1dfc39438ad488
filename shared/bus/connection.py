"""Connecting to NATS: reconnect forever, log every change of state."""

from __future__ import annotations

import nats
from nats.aio.client import Client

from shared.logging import get_logger

log = get_logger(__name__)


async def connect(url: str, name: str) -> Client:
    async def disconnected():
        log.warning("nats_disconnected", url=url)

    async def reconnected():
        log.info("nats_reconnected", url=url)

    async def error(exc):
        log.warning("nats_error", error=repr(exc))

    return await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        ping_interval=5,
        max_outstanding_pings=2,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
