"""Loops that retry on errors must still stop when cancelled. nats-py swallows
``CancelledError`` in a few places (flushes, drains), so a cancel can be consumed
without ever reaching the loop; ``Task.cancelling()`` still remembers it."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop, even when the
    request was swallowed on its way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
