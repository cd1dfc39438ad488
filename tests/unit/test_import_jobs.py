"""A synchronous import stops when its client goes away: the service call is cancelled
(and with it the parsing process), instead of running on for nobody."""

from __future__ import annotations

import asyncio

import pytest

from gateway.import_jobs import while_connected


class Request:
    """What while_connected reads of a Starlette request: the ASGI receive channel."""

    def __init__(self, disconnect_after: float | None) -> None:
        self.disconnect_after = disconnect_after

    async def receive(self) -> dict:
        if self.disconnect_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.disconnect_after)
        return {"type": "http.disconnect"}


async def test_the_call_is_cancelled_when_the_client_disconnects():
    cancelled = asyncio.Event()

    async def service_call():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(while_connected(Request(0.05), service_call()), timeout=5)
    assert cancelled.is_set()


async def test_a_connected_client_gets_the_answer():
    async def service_call():
        await asyncio.sleep(0.01)
        return "imported"

    assert await while_connected(Request(None), service_call()) == "imported"
