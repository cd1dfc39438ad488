"""What one order's commission costs incentive's database (issue 18): SQL statements per
accrual when order's final approvals arrive through the real consumer path (inbox row,
handler, booking, AccrualRecorded into the outbox) on SQLite, alone and in a batch as
under load. The figures are printed and bounded here so a regression shows."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial

from nats.aio.client import Client
from nats.aio.msg import Msg
from qudao.common.v1 import money_pb2
from qudao.order.v1 import events_pb2 as order_events
from qudao.order.v1 import order_pb2
from sqlalchemy import event, func, select

from services.incentive.adapters.orm import AccrualRow, inbox_table, outbox_table
from services.incentive.adapters.uow import SqlIncentiveUnitOfWork
from services.incentive.bootstrap import MIGRATIONS
from services.incentive.consumers import SUBSCRIPTIONS
from services.incentive.domain.commission import CommissionBase, CommissionRule
from services.incentive.usecases.ports import Deps, Policy
from shared.bus.consumer import ConsumerRunner
from shared.bus.envelope import build_envelope, decode_envelope
from shared.bus.outbox import Outbox
from shared.clock import SystemClock
from shared.db import Database, migrate
from shared.events.order import ORDER_APPROVED
from shared.ids import RandomIds

ORDERS = 40


def _approved(dealer_id: str) -> Msg:
    order_id = str(uuid.uuid4())
    order = order_pb2.Order(
        id=order_id, dealer_id=dealer_id, selling_company="default",
        lines=[order_pb2.OrderLine(line_no=n, product_code=f"A-00{n}", product_line="A系列",
                                   quantity_ordered=2,
                                   amount=money_pb2.Money(amount_minor=50_000, currency="CNY"))
               for n in (1, 2)],
        total=money_pb2.Money(amount_minor=100_000, currency="CNY"))
    envelope = build_envelope("order", order_events.OrderApproved(
        order=order, stage=order_pb2.APPROVAL_STAGE_FINANCE, fully_approved=True), order_id)
    return Msg(_client=None, subject=ORDER_APPROVED.subject, data=envelope.SerializeToString())


async def _consumer(tmp_path) -> tuple[Database, ConsumerRunner]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'incentive.db'}"
    await asyncio.to_thread(migrate, MIGRATIONS, url)
    db = Database(url)
    outbox = Outbox(outbox_table, "incentive")
    deps = Deps(uow=partial(SqlIncentiveUnitOfWork, db, outbox),
                uow_in=lambda session: SqlIncentiveUnitOfWork(db, outbox, joined=session),
                clock=SystemClock(), ids=RandomIds(), scopes=None, policy=Policy(),
                audiences=None, renderer=None)
    async with deps.uow() as uow:
        await uow.rules.put(CommissionRule(id="orders", name="订单佣金",
                                           base=CommissionBase.APPROVED_ORDERS,
                                           base_rate_bps=200))
        await uow.commit()
    return db, ConsumerRunner(db, Client(), inbox_table, SUBSCRIPTIONS, deps)


async def _statements_per_accrual(db: Database, runner: ConsumerRunner,
                                  batch: int) -> float:
    orders = next(s for s in runner.subscriptions if s.durable == "incentive-order")
    dealer_id = str(uuid.uuid4())
    statements = 0

    def count(*_args, **_kwargs) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(ORDERS // batch):
            messages = [_approved(dealer_id) for _ in range(batch)]
            outcomes = await runner._apply_batch(
                orders, [(m, decode_envelope(m.subject, m.data)) for m in messages])
            assert outcomes == ["applied"] * batch
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    async with db.read() as session:
        accruals = await session.scalar(select(func.count()).select_from(AccrualRow).where(
            AccrualRow.dealer_id == dealer_id))
    assert accruals == ORDERS  # one commission line per order (one product line)
    return statements / accruals


async def test_an_approved_order_accrues_in_few_statements(tmp_path, capsys):
    db, runner = await _consumer(tmp_path)
    try:
        alone = await _statements_per_accrual(db, runner, batch=1)
        batched = await _statements_per_accrual(db, runner, batch=10)
    finally:
        await db.dispose()
    with capsys.disabled():
        print(f"\norder commission: {alone:.1f} statements per accrual alone, "
              f"{batched:.1f} in batches of 10")
    # BEGIN, inbox, savepoint, the order read once and stored, the ledger's lines of
    # the order, the rules, the accrual, the dealer's returns, its programs, the outbox,
    # release (was 18: the order read three times, two more savepoints for the inbox).
    assert alone == 12
    # No savepoint of its own per event, and rules, returns and programs read once per
    # batch (was 17.1).
    assert batched <= 8.5
