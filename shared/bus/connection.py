"""Connecting to NATS: reconnect forever, log every change of state.

Each process connects as its own NATS user (its name: ``order``, ``gateway``, ``ops``)
with the password its Secret gives; the server's permissions (shared/bus/permissions.py)
let that user publish only its own events and dead letters. Replies come to an inbox
prefix of its own (``_INBOX_<user>``), so no process can read another's replies."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence

import nats
from nats.aio.client import Client

from shared.logging import get_logger

log = get_logger(__name__)
# Clients connecting in the background → the task connecting them (see ``established``).
_establishing: weakref.WeakKeyDictionary[Client, asyncio.Task] = weakref.WeakKeyDictionary()


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}" if user else "_INBOX"


def _options(url: str, name: str, user: str, password: str) -> dict:
    async def disconnected():
        log.warning("nats_disconnected", url=url)

    async def reconnected():
        log.info("nats_reconnected", url=url)

    async def error(exc):
        log.warning("nats_error", error=repr(exc))

    credentials = {"user": user, "password": password} if user and password else {}
    return dict(servers=url.split(","), name=name, max_reconnect_attempts=-1,
                reconnect_time_wait=0.25, connect_timeout=2, ping_interval=5,
                max_outstanding_pings=2, allow_reconnect=True,
                inbox_prefix=inbox_prefix(user if credentials else ""),
                disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error,
                **credentials)


def connect_in_background(settings, *,
                          once_connected: Sequence[Callable[[], Awaitable[None]]] = ()
                          ) -> Client:
    """A service's client at once, connecting in the background: the service starts and
    serves what needs no NATS while the server is away (its outbox holds the events), and
    goes on as soon as it is back. ``once_connected`` steps (declaring the streams) run
    after the first connection, each retried until it succeeds."""
    options = _options(settings.nats_url, f"qudao-{settings.process}", settings.process,
                       settings.nats_password.get_secret_value())
    nc = Client()

    async def retried(step: Callable[[], Awaitable[None]], what: str) -> None:
        delay = 0.25
        while True:
            try:
                await step()
                return
            except Exception as exc:
                log.warning("nats_unreachable", step=what, error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def establish() -> None:
        await retried(lambda: nc.connect(**options), "connect")
        for step in once_connected:
            await retried(step, getattr(step, "__qualname__", "setup"))

    _establishing[nc] = asyncio.create_task(establish(), name="nats-connect")
    return nc


async def established(nc: Client, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the client's background connection (and its steps);
    True once connected."""
    task = _establishing.get(nc)
    if task is not None:
        await asyncio.wait({task}, timeout=timeout)
    return nc.is_connected


async def stop_connecting(nc: Client) -> None:
    task = _establishing.pop(nc, None)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def connect(url: str, name: str, *, user: str = "", password: str = "",
                  wait_for_server: bool = False) -> Client:
    """Connect to the servers in ``url`` (comma-separated). With ``wait_for_server`` a
    first connection that fails is tried again until it succeeds (the caller runs this
    in the background); otherwise it raises, and the process's start fails."""
    options = _options(url, name, user, password)
    delay = 0.25
    while True:
        try:
            return await nats.connect(**options)
        except Exception as exc:
            if not wait_for_server:
                raise
            log.warning("nats_unreachable", url=url, error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def connect_as(settings, *, wait_for_server: bool = False) -> Client:
    """Connect a process of the suite as its own NATS user (its ``process`` name) with
    the password of its settings (``QUDAO_<PROCESS>_NATS_PASSWORD``)."""
    return await connect(settings.nats_url, f"qudao-{settings.process}",
                         user=settings.process,
                         password=settings.nats_password.get_secret_value(),
                         wait_for_server=wait_for_server)
