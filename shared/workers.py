"""Background workers a service's bootstrap adds next to its consumers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shared.logging import get_logger

log = get_logger(__name__)


def every(seconds: float, step: Callable[[], Awaitable[object]], name: str, *,
          first_wait: bool = False) -> Callable[[], Awaitable[None]]:
    """A worker running ``step`` every ``seconds``; a failing pass (the database busy or
    gone) is logged and the next one tries again."""
    async def worker() -> None:
        if first_wait:
            await asyncio.sleep(seconds)
        while True:
            try:
                result = await step()
                if isinstance(result, dict) and any(result.values()):
                    log.info(f"{name}_pass", **result)
            except Exception as exc:
                log.warning(f"{name}_failed", error=repr(exc))
            await asyncio.sleep(seconds)

    return worker
