"""A list of dealer accounts reads the figures of all its accounts at once: a region's
list (thousands of accounts) took one exposure read and two ledger reads per account,
over 30 s at 2,500 accounts, and the gateway answered 504. The count of statements is
bounded here whatever the number of accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import event

from services.order.domain.accounts import AccountFilter, LimitChange
from services.order.usecases import accounts
from shared.context import principal_var
from shared.pagination import PageRequest
from tests.order.test_credit_exposure import EVERYONE, world

ACCOUNTS = 120


async def test_listing_accounts_reads_their_figures_in_a_few_statements():
    db, deps = await world()
    principal_var.set(EVERYONE)
    company = f"co-{uuid.uuid4().hex[:6]}"
    for _ in range(ACCOUNTS):
        await accounts.set_credit_limit(
            LimitChange(str(uuid.uuid4()), company, 1_000_00, "CNY", 30, "bench"),
            who=EVERYONE, uow=deps.uow(), scopes=deps.scopes, clock=deps.clock)
    statements = 0

    def count(*_args, **_kwargs):
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        which = AccountFilter(selling_company=company)
        overdue = await accounts.list_dealer_accounts(
            which, True, PageRequest(size=50), who=EVERYONE, uow=deps.uow(),
            scopes=deps.scopes, clock=deps.clock)
        reading_all = statements
        page = await accounts.list_dealer_accounts(
            which, False, PageRequest(size=50), who=EVERYONE, uow=deps.uow(),
            scopes=deps.scopes, clock=deps.clock)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert overdue.items == []  # nothing invoiced yet
    assert len(page.items) == 50 and page.next_token
    assert all(view.account.credit_limit_minor == 1_000_00 for view in page.items)
    # The accounts, their exposure, their invoices, payments and rebate credits.
    assert reading_all <= 6
    assert statements - reading_all <= 6
