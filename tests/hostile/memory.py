"""Memory of the test process (which runs the gateway and every service) and of its
import parsers (child processes), sampled from /proc while a file is read."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int | str = "self") -> int:
    """Resident bytes of a process (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def children() -> list[int]:
    """The import parsers among this process's children (nats-server is one too)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            continue
    return [pid for pid in pids if _is_parser(pid)]


def _is_parser(pid: int) -> bool:
    try:
        return b"shared.tabular" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Sampler:
    """``growth``: the process's peak resident memory above what it was on entry;
    ``children_peak``: the largest resident memory a child process reached."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.baseline = self.peak = self.children_peak = 0
        self._task: asyncio.Task | None = None

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)

    @property
    def children_now(self) -> int:
        return len([pid for pid in children() if rss(pid)])

    def _sample(self) -> None:
        self.peak = max(self.peak, rss())
        for pid in children():
            self.children_peak = max(self.children_peak, rss(pid))

    async def _run(self) -> None:
        while True:
            # /proc reads are quick; off the loop they would be sampled less evenly.
            self._sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Sampler:
        self.baseline = self.peak = rss()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._sample()
