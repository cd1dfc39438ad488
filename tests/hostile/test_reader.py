"""The parsing process: its budget refuses a file that needs more, and cancelling the
caller (the client went away) kills it."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import InvalidArgument
from shared.tabular import Limits, read_table_isolated
from tests.harness import eventually
from tests.hostile.memory import Sampler


def wide_csv(rows: int) -> bytes:
    return b"a,b,c,d\n" + b"".join(b"%d,text %d,more text,%d\n" % (n, n, n) for n in range(rows))


async def test_a_file_needing_more_than_the_memory_budget_is_refused():
    with pytest.raises(InvalidArgument, match="MiB of memory"):
        await read_table_isolated(wide_csv(100_000), "f.csv",
                                  limits=Limits(memory_bytes=96 * 1024 * 1024))


async def test_the_parsing_process_answers_and_reports_its_peak():
    table = await read_table_isolated(wide_csv(1000), "f.csv")
    assert len(table.rows) == 1000 and table.rows[-1] == (
        1001, {"a": "999", "b": "text 999", "c": "more text", "d": "999"})
    assert 0 < table.peak_rss < 512 * 1024 * 1024


async def test_cancelling_the_caller_kills_the_parsing_process():
    async with Sampler() as memory:
        reading = asyncio.create_task(read_table_isolated(wide_csv(100_000), "f.csv"))
        await eventually(lambda: memory.children_now > 0, timeout=20, interval=0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert memory.children_now == 0
