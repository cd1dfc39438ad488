"""A period is settled once, on the real databases: two closes of the same month at the
same time — as two processes would run them, each with its own connections — end with
exactly one settlement run; the other is refused with ALREADY_EXISTS naming the month,
and leaves nothing of itself behind (no run, no statements, no frozen accruals, no
events). On PostgreSQL both transactions are held until each has read that the month is
open, so only the database's constraint can tell them apart."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from services.incentive.adapters.orm import (
    AccrualRow,
    ClosedMonthRow,
    SettlementPeriodRow,
    SettlementRow,
    outbox_table,
)
from services.incentive.adapters.uow import SqlIncentiveUnitOfWork
from services.incentive.bootstrap import MIGRATIONS
from services.incentive.domain.facts import Sale, UploadPart
from services.incentive.domain.periods import Period
from services.incentive.usecases import facts, settlement
from services.incentive.usecases.ports import Policy
from shared.bus.outbox import Outbox
from shared.context import Principal
from shared.db import Database, migrate
from shared.errors import AlreadyExists
from shared.events.incentive import SETTLEMENT_CLOSED
from shared.ids import RandomIds
from shared.testing import FakeClock
from tests.harness import create_pg_databases, drop_pg_databases

FINANCE = Principal(subject="user:fin", user_id="fin", roles=frozenset({"finance"}))
CONTROLLER = Principal(subject="user:ctl", user_id="ctl", roles=frozenset({"finance"}))
POLICY = Policy(default_rate_bps=200, grace_days=10)


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'incentive.db'}"
        await asyncio.to_thread(migrate, MIGRATIONS, url)
        yield url
        return
    from tests.conftest import require_postgres

    require_postgres()
    prefix = f"qudao_close_{id(request) % 10**8}"
    url = (await create_pg_databases(prefix, ["incentive"]))["incentive"]
    try:
        await asyncio.to_thread(migrate, MIGRATIONS, url)
        yield url
    finally:
        await drop_pg_databases(prefix, ["incentive"])


class Process:
    """One incentive process: its own connections to the shared database."""

    def __init__(self, url: str, barrier: asyncio.Barrier | None = None) -> None:
        self.db = Database(url)
        self.outbox = Outbox(outbox_table, "incentive")
        self.barrier = barrier

    def uow(self) -> SqlIncentiveUnitOfWork:
        uow = _Racing(self.db, self.outbox)
        uow.barrier = self.barrier
        return uow

    def writes(self) -> dict:
        return {"uow": self.uow(), "clock": FakeClock(), "ids": RandomIds(), "policy": POLICY}


class _Racing(SqlIncentiveUnitOfWork):
    """Holds a close at the moment it writes the months closed, until the other close
    gets there too (both have read them open)."""

    barrier: asyncio.Barrier | None = None

    def bind(self, session) -> None:
        super().bind(session)
        if self.barrier is None:
            return
        closing = self.settlements.close_months

        async def close_months(*args):
            await asyncio.wait_for(self.barrier.wait(), 20)
            await closing(*args)

        self.settlements.close_months = close_months


async def _january(process: Process) -> None:
    """Three dealers' accepted sell-through in January 2026 (and one row in February)."""
    for number, dealer in enumerate(("d1", "d2", "d3"), start=1):
        upload = f"u{number}"
        rows = [Sale(upload, 0, 2, dealer, "h1", "A-001", "A系列", "B1", date(2026, 1, 5 + number),
                     10 * number, 100_000 * number),
                Sale(upload, 0, 3, dealer, "h2", "A-001", "A系列", "B1", date(2026, 2, 1), 1,
                     10_000)]
        await facts.accept_flow_part(UploadPart(upload, 0, dealer, 1, f"ev-{upload}"), rows,
                                     **process.writes())


async def _count(db: Database, table, *where) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where))


async def test_two_closes_of_a_month_at_once_settle_it_once(database_url):
    postgres = not database_url.startswith("sqlite")
    barrier = asyncio.Barrier(2) if postgres else None
    first, second = Process(database_url, barrier), Process(database_url, barrier)
    try:
        await _january(first)
        january = Period.parse("2026-01")
        outcomes = await asyncio.gather(
            settlement.close_period(january, "", who=FINANCE, **first.writes()),
            settlement.close_period(january, "", who=CONTROLLER, **second.writes()),
            return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, Exception)]
        closed = [o for o in outcomes if not isinstance(o, Exception)]
        assert len(closed) == 1 and len(refused) == 1, outcomes
        assert isinstance(refused[0], AlreadyExists), refused[0]
        assert refused[0].reason == "PERIOD_CLOSED" and "2026-01" in refused[0].message
        record = closed[0]
        assert (record.dealer_count, record.total_minor) == (3, 2_000 + 4_000 + 6_000)

        db = first.db
        assert await _count(db, SettlementPeriodRow) == 1
        assert await _count(db, ClosedMonthRow, ClosedMonthRow.settlement_period_id
                            == record.id) == 1
        assert await _count(db, ClosedMonthRow) == 1
        assert await _count(db, SettlementRow) == 3
        assert await _count(db, SettlementRow, SettlementRow.settlement_period_id
                            != record.id) == 0
        # January's accruals are frozen into the one run; February's stay open.
        frozen = await _count(db, AccrualRow, AccrualRow.settlement_period_id == record.id)
        assert frozen == 3
        assert await _count(db, AccrualRow, AccrualRow.settlement_period_id.is_(None)) == 3
        assert await _count(db, AccrualRow, AccrualRow.settlement_period_id.is_not(None),
                            AccrualRow.settlement_period_id != record.id) == 0
        assert await _count(db, outbox_table, outbox_table.c.subject
                            == SETTLEMENT_CLOSED.subject) == 1

        # Closing it again later is refused the same way; the run can still be approved.
        second.barrier = None
        with pytest.raises(AlreadyExists):
            await settlement.close_period(january, "", who=FINANCE, **second.writes())
        approver = CONTROLLER if record.closed_by == FINANCE.subject else FINANCE
        settled, credited = await settlement.settle_period(record.id, who=approver,
                                                           **second.writes())
        assert credited == 3 and settled.settled_by == approver.subject
    finally:
        await first.db.dispose()
        await second.db.dispose()

