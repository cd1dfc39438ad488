"""A retrying loop stops when cancelled even if a library swallowed the cancel on its
way (as nats-py does in places): without it, a service's stop waits forever."""

from __future__ import annotations

import asyncio

import pytest

from shared.cancellation import raise_if_cancelled


async def test_a_retry_loop_stops_even_when_a_library_swallows_the_cancel():
    attempts = 0

    async def call_that_swallows_cancel():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass
        raise ConnectionError("connection closed")

    async def retry_loop():
        nonlocal attempts
        while True:
            try:
                await call_that_swallows_cancel()
            except Exception:
                attempts += 1
                raise_if_cancelled()
                await asyncio.sleep(0.01)

    task = asyncio.create_task(retry_loop())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)
    assert attempts == 1
