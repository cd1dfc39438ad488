"""A JetStream pull loop that keeps one pull request open at a time, with a short expiry
and idle heartbeats, and reports a stall when the heartbeats stop.

nats-py's ``fetch`` can go silent after a server restart (the pending pull request is
not re-sent) and sends a heartbeat without an expiry when its queue already holds
messages, which the server rejects; this loop owns the request protocol instead."""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

STATUS = "Status"
DESCRIPTION = "Description"


class PullStalled(RuntimeError):
    """The server stopped answering our pull request; re-subscribe."""


class PullLoop:
    def __init__(self, nc: Client, stream: str, durable: str, *, batch: int = 64,
                 expires: float = 5.0, heartbeat: float = 1.0) -> None:
        if heartbeat * 2 >= expires:
            raise ValueError("the idle heartbeat must be under half the expiry")
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.batch = batch
        self.expires = expires
        self.heartbeat = heartbeat
        self._inbox = ""
        self._sub = None
        self._remaining = 0
        self._active_until = 0.0

    async def start(self) -> None:
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._inbox)

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _request(self, now: float) -> None:
        body = {"batch": self.batch, "expires": int(self.expires * 1e9),
                "idle_heartbeat": int(self.heartbeat * 1e9)}
        await self.nc.publish(self.subject, json.dumps(body).encode(), reply=self._inbox)
        self._remaining = self.batch
        self._active_until = now + self.expires

    async def next_batch(self) -> list[Msg]:
        """Messages as they arrive (at least one), or [] when the request expired idle."""
        loop = asyncio.get_running_loop()
        if self._remaining <= 0 or loop.time() >= self._active_until:
            await self._request(loop.time())
        messages: list[Msg] = []
        while True:
            wait = self.heartbeat * 2 + 0.5 if not messages else 0.001
            try:
                message = await self._sub.next_msg(timeout=wait)
            except (TimeoutError, NatsTimeoutError):
                if messages:
                    return messages
                if loop.time() >= self._active_until + 0.5:
                    # Expired without the server's 408: it no longer knows our request.
                    self._remaining = 0
                    raise PullStalled("pull request expired without an answer") from None
                raise PullStalled("no idle heartbeat from the server") from None
            status = (message.headers or {}).get(STATUS) if not message.data else None
            if status == "100":
                continue
            if status in ("404", "408"):
                self._remaining = 0
                return messages
            if status is not None:
                self._remaining = 0
                description = (message.headers or {}).get(DESCRIPTION, "")
                if status == "409" and "Exceeded Max" in description:
                    return messages
                raise PullStalled(f"server answered {status} {description}")
            self._remaining -= 1
            messages.append(message)
            if self._remaining <= 0:
                return messages
