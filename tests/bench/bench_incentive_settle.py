"""incentive.settle: closing a quarter — rebates for 5,000 dealers over 1,000,000 accepted
flow rows — through the real use case (settlement.close_period on the SQL adapters, one
SQLite database as the service runs it): the quarter's rebates recomputed from the stored
facts (accepted rows less replaced uploads and diversions, per program and dealer) and
compared with the ledger, every accrual due frozen, one statement per dealer built with
its lines and their sources, the settlement run and its event written, all in one
transaction.

The database is first filled as the service would have it after the quarter: the accepted
rows of one upload per dealer and month, the commission each upload part accrued (computed
by the domain's own functions), and a quarterly program with tiers whose rebates were
booked as the uploads came in (the real CreateRebateProgram use case books them).

Baseline, same database, same run: the single SQL GROUP BY over the same rows that a
hand-written report would run (quantity and amount per dealer over the quarter)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from services.incentive.adapters.orm import outbox_table
from services.incentive.adapters.uow import SqlIncentiveUnitOfWork
from services.incentive.bootstrap import MIGRATIONS
from services.incentive.domain.commission import CommissionRule
from services.incentive.domain.compute import Rules, flow_commission
from services.incentive.domain.facts import Sale
from services.incentive.domain.periods import Period, PeriodKind
from services.incentive.domain.programs import Program
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier
from services.incentive.usecases import programs, settlement
from services.incentive.usecases.ports import Policy
from shared.bus.outbox import Outbox
from shared.clock import SystemClock
from shared.context import Principal
from shared.db import Database, migrate
from shared.ids import RandomIds
from tests.bench.common import Result

NAME = "incentive.settle"
QUARTER = Period.parse("2026-Q3")
ADMIN = Principal(subject="user:bench-admin", roles=frozenset({"hq_admin"}))
FINANCE = Principal(subject="user:bench-finance", roles=frozenset({"finance"}))
POLICY = Policy(default_rate_bps=200)
PRODUCTS = [(f"P-{n:03d}", "A系列" if n % 5 else "B系列", 5_000 + 100 * n) for n in range(40)]


class Everyone:
    """identity's QueryAudience answered with the seeded dealers."""

    def __init__(self, dealers: list[str]) -> None:
        self.dealers = set(dealers)

    async def members(self, expression: bytes, product_lines: tuple[str, ...]) -> set[str]:
        return set(self.dealers)


def _sales(dealers: list[str], rows: int, seed: int = 7) -> dict[tuple[str, int], list[Sale]]:
    """One upload per dealer and month of the quarter, rows spread evenly."""
    rng = random.Random(seed)
    months = QUARTER.months()
    count = len(dealers) * len(months)
    uploads: dict[tuple[str, int], list[Sale]] = {}
    for index, (dealer, month) in enumerate((d, m) for d in dealers for m in months):
        size = rows // count + (1 if index < rows % count else 0)
        if size:
            upload = f"{dealer}-{month}"
            first = date.fromisoformat(f"{month}-01")
            found = []
            for row in range(size):
                code, line, price = PRODUCTS[rng.randrange(len(PRODUCTS))]
                quantity = rng.randint(1, 10)
                found.append(Sale(upload, 0, row + 2, dealer, f"H-{rng.randrange(50_000)}",
                                  code, line, f"L{rng.randrange(200):03d}",
                                  first + timedelta(days=rng.randrange(28)), quantity,
                                  quantity * price))
            uploads[(upload, 0)] = found
    return uploads


def _load_facts(path: Path, uploads: dict[tuple[str, int], list[Sale]]) -> None:
    """The accepted rows and upload parts, as the flow consumer stores them (bulk)."""
    connection = sqlite3.connect(path)
    try:
        connection.executemany(
            "INSERT INTO upload_parts (upload_id, part_index, dealer_id, part_count, event_id, "
            "replaces_upload_id) VALUES (?, ?, ?, 1, ?, '')",
            [(u, p, rows[0].dealer_id, str(uuid.uuid4())) for (u, p), rows in uploads.items()])
        connection.executemany(
            "INSERT INTO sales (upload_id, part_index, row_number, dealer_id, customer_id, "
            "transfer_to_dealer_id, product_code, product_line, batch, sold_on, quantity, "
            "amount_minor, currency, gtin) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, 'CNY', '')",
            [(s.upload_id, s.part_index, s.row_number, s.dealer_id, s.customer_id,
              s.product_code, s.product_line, s.batch, s.sold_on.isoformat(), s.quantity,
              s.amount_minor) for rows in uploads.values() for s in rows])
        connection.commit()
    finally:
        connection.close()


async def _commission(db: Database, outbox: Outbox,
                      uploads: dict[tuple[str, int], list[Sale]]) -> int:
    """The commission each upload part accrued, computed by the domain as the consumer
    does, booked through the accrual repository."""
    from services.incentive.domain.accruals import Accrual

    rules = Rules((), CommissionRule(id="default", name="default rate",
                                     base_rate_bps=POLICY.default_rate_bps))
    clock = SystemClock()
    entries = []
    for (upload, part), rows in uploads.items():
        lines = flow_commission(upload, part, rows, False, [], [], rules, POLICY.default_company)
        entries += [Accrual(str(uuid.uuid4()), key, amounts, "flow.upload.accepted",
                            f"{upload}#{part}", clock.now()) for key, amounts in lines.items()]
    uow = SqlIncentiveUnitOfWork(db, outbox)
    async with uow:
        for start in range(0, len(entries), 5_000):
            await uow.accruals.add_all(entries[start:start + 5_000])
        await uow.commit()
    return len(entries)


async def _program(db: Database, outbox: Outbox, dealers: list[str]) -> Program:
    """A quarterly program on A系列 with three retroactive quantity tiers; creating it
    books every dealer's rebate for the quarter (the real use case)."""
    draft = Program("", 0, "2026 Q3 A系列 阶梯返利", ("A系列",), (), PeriodKind.QUARTER,
                    QUARTER.start, QUARTER.end, QUARTER.start, Basis.QUANTITY,
                    Scheme(Mode.RETROACTIVE, Threshold.QUANTITY,
                           (Tier(200, 100), Tier(500, 200), Tier(1_000, 300))))
    created, _ = await programs.create_program(
        draft, who=ADMIN, uow=SqlIncentiveUnitOfWork(db, outbox), audiences=Everyone(dealers),
        clock=SystemClock(), ids=RandomIds(), policy=POLICY)
    return created


async def _group_by(db: Database) -> float:
    started = time.perf_counter()
    async with db.read() as session:
        rows = (await session.execute(text(
            "SELECT dealer_id, SUM(quantity), SUM(amount_minor) FROM sales "
            "WHERE sold_on >= :start AND sold_on <= :end GROUP BY dealer_id"),
            {"start": QUARTER.start.isoformat(), "end": QUARTER.end.isoformat()})).all()
    assert rows
    return time.perf_counter() - started


async def run(workdir: Path, quick: bool) -> Result:
    dealers_count, rows = (50, 10_000) if quick else (5_000, 1_000_000)
    path = workdir / "incentive.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate, MIGRATIONS, url)
    dealers = [str(uuid.UUID(int=n + 1)) for n in range(dealers_count)]
    started = time.perf_counter()
    uploads = _sales(dealers, rows)
    await asyncio.to_thread(_load_facts, path, uploads)
    db = Database(url)
    outbox = Outbox(outbox_table, "incentive")
    try:
        commissions = await _commission(db, outbox, uploads)
        program = await _program(db, outbox, dealers)
        seeded = time.perf_counter() - started
        print(f"   seeded {sum(map(len, uploads.values()))} rows, {len(uploads)} uploads, "
              f"{commissions} commission accruals in {seeded:.1f} s", flush=True)
        await _group_by(db)  # warm the page cache for both
        baseline = statistics.median([await _group_by(db) for _ in range(3)])
        started = time.perf_counter()
        record = await settlement.close_period(
            QUARTER, "", who=FINANCE, uow=SqlIncentiveUnitOfWork(db, outbox),
            clock=SystemClock(), ids=RandomIds(), policy=POLICY)
        ours = time.perf_counter() - started
        async with db.read() as session:
            frozen = (await session.execute(text(
                "SELECT COUNT(*) FROM accruals WHERE settlement_period_id = :id"),
                {"id": record.id})).scalar_one()
    finally:
        await db.dispose()
    assert record.dealer_count == dealers_count, record
    return Result(
        name=NAME,
        params={"dealers": dealers_count, "flow_rows": sum(map(len, uploads.values())),
                "uploads": len(uploads), "period": QUARTER.label, "programs": 1,
                "database": "sqlite", "path": "settlement.close_period (use case, SQL "
                                              "adapters), one transaction"},
        value=round(ours, 3), unit="s",
        baseline="single_sql_group_by", baseline_value=round(baseline, 3), baseline_unit="s",
        ratio=round(ours / baseline, 2),
        ratio_meaning="close time / GROUP BY time over the same rows: how many times longer "
                      "the whole close takes than one aggregate query (lower is better); "
                      "target within 5x",
        extra={"statements": record.dealer_count, "total_minor": record.total_minor,
               "accruals_frozen": frozen, "program_id": program.id,
               "dealers_per_second": round(dealers_count / ours, 1),
               "rows_per_second": round(sum(map(len, uploads.values())) / ours)},
    )
