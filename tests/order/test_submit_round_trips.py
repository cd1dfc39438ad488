"""What one order submission costs the database (issue 18.3): SQL statements and hops to
aiosqlite's worker thread, per order of two lines, auto-approved, with a client
reference, priced from the catalog and the dealer's tier's price list (read in the same
statement as the products). Before the running exposure and the leaner submission the
same order took 9 statements and 32 hops (30 before each statement became one hop to
the worker thread); the figures are printed and bounded here so a
regression shows."""

from __future__ import annotations

import uuid

import aiosqlite.core
from sqlalchemy import event

from services.order.domain.orders import LineInput, OrderStatus
from shared.context import principal_var
from tests.order.test_credit_exposure import EVERYONE, set_limit, submit, world

ORDERS = 30


async def test_an_order_submission_takes_eight_statements(monkeypatch, capsys):
    db, deps = await world()
    principal_var.set(EVERYONE)
    dealer = str(uuid.uuid4())
    await set_limit(deps, dealer, 10**12)
    await submit(deps, dealer, [LineInput("EX-1", 1)], "RT-warm")
    statements = hops = 0

    def count_statement(*_args, **_kwargs):
        nonlocal statements
        statements += 1

    original = aiosqlite.core.Connection._execute

    async def count_hop(self, fn, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await original(self, fn, *args, **kwargs)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_statement)
    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", count_hop)
    first = None
    try:
        for n in range(ORDERS):
            order = await submit(deps, dealer, [LineInput("EX-1", 2), LineInput("EX-2", 1)],
                                 f"RT-{n}")
            assert order.status == OrderStatus.APPROVED
            first = first or order
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count_statement)
    with capsys.disabled():
        print(f"\norder submission: {statements / ORDERS:.1f} statements, "
              f"{hops / ORDERS:.1f} worker hops per order")
    # BEGIN, priced products, credit figures, orders, approval, lines, exposure, outbox.
    assert statements / ORDERS == 8
    # One hop per statement (shared.sqlite_driver) and one for the commit.
    assert hops / ORDERS <= 10
    # A repeated reference still answers with the stored order, and stores nothing.
    again = await submit(deps, dealer, [LineInput("EX-1", 2), LineInput("EX-2", 1)], "RT-0")
    assert again.id == first.id
