"""Statements on in-memory fakes: issued by finance from the ledger (the opening balance
from everything before the period, orders and shipments for information only), issued
again supersedes the open one; the dealer's staff confirm once or dispute a line (with
an amount, or the whole line); another dealer's statement is NOT_FOUND."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.order.domain.statements import (
    CONFIRMED,
    DISPUTED,
    ISSUED,
    SUPERSEDED,
    Dispute,
    Entry,
    LineKind,
    StatementQuery,
)
from services.order.usecases import statements
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.order import STATEMENT_CONFIRMED, STATEMENT_DISPUTED, STATEMENT_ISSUED
from shared.pagination import PageRequest
from shared.testing import FakeClock, FakeScopes, SequentialIds
from tests.service.order.fakes import FakeOrderUnitOfWork

FINANCE = Principal(subject="user:fin", roles=frozenset({"finance"}))
D1 = Principal(subject="user:d1", roles=frozenset({"dealer_admin"}), dealer_id="d1")
D2 = Principal(subject="user:d2", roles=frozenset({"dealer_admin"}), dealer_id="d2")
COMPANY = "default"


@pytest.fixture
def world():
    uow, scopes = FakeOrderUnitOfWork(), FakeScopes()
    scopes.allow(FINANCE, all_dealers=True)
    scopes.allow(D1, ["d1"])
    scopes.allow(D2, ["d2"])
    uow.statements.ledger[("d1", COMPANY)] = [
        Entry(LineKind.INVOICE, "I0", "2026-09-30", 5_000, "invoice I0"),
        Entry(LineKind.ORDER, "o1", "2026-10-02", 8_000, "order PO-1"),
        Entry(LineKind.SHIPMENT, "S1", "2026-10-05", 8_000, "shipment W1"),
        Entry(LineKind.INVOICE, "I1", "2026-10-06", 8_000, "invoice I1"),
        Entry(LineKind.PAYMENT, "P1", "2026-10-20", 6_000, "payment"),
        Entry(LineKind.INVOICE, "I2", "2026-11-03", 1_000, "invoice I2"),
    ]
    return uow, scopes, FakeClock(datetime(2026, 11, 5, tzinfo=UTC)), SequentialIds("st")


async def issue(world, who=FINANCE, dealer="d1"):
    uow, scopes, clock, ids = world
    return await statements.issue_statement(dealer, COMPANY, "2026-10-01", "2026-10-31",
                                            who=who, uow=uow, clock=clock, ids=ids,
                                            scopes=scopes, currency="CNY")


async def test_finance_issues_a_statement_of_the_period_from_the_ledger(world):
    statement = await issue(world)
    assert (statement.opening_minor, statement.total_debit_minor,
            statement.total_credit_minor, statement.closing_minor) == (
        5_000, 8_000, 6_000, 7_000)
    assert [(line.ref_id, line.debit_minor, line.balance_minor)
            for line in statement.lines] == [
        ("o1", 0, 5_000), ("S1", 0, 5_000), ("I1", 8_000, 13_000), ("P1", 0, 7_000)]
    assert statement.status == ISSUED
    assert world[0].published_of(STATEMENT_ISSUED)[0].statement.closing_balance \
        .amount_minor == 7_000


async def test_issuing_a_period_again_supersedes_the_open_statement(world):
    uow = world[0]
    first = await issue(world)
    second = await issue(world)
    assert second.supersedes_statement_id == first.id
    assert uow.statements.rows[first.id].status == SUPERSEDED


async def test_only_finance_issues_and_bad_periods_are_named(world):
    uow, scopes, clock, ids = world
    with pytest.raises(PermissionDenied):
        await issue(world, who=D1)
    with pytest.raises(InvalidArgument) as caught:
        await statements.issue_statement("d1", COMPANY, "2026-10-31", "2026-10-01",
                                         who=FINANCE, uow=uow, clock=clock, ids=ids,
                                         scopes=scopes, currency="CNY")
    assert caught.value.violations[0].field == "period_end"
    assert uow.statements.rows == {}


async def test_the_dealer_confirms_once(world):
    uow, scopes, clock, _ = world
    statement = await issue(world)
    with pytest.raises(PermissionDenied):
        await statements.confirm_statement(statement.id, "", who=FINANCE, uow=uow,
                                           clock=clock, scopes=scopes)
    confirmed = await statements.confirm_statement(statement.id, "ok", who=D1, uow=uow,
                                                   clock=clock, scopes=scopes)
    assert confirmed.status == CONFIRMED and confirmed.confirmed_by == D1.subject
    with pytest.raises(FailedPrecondition):
        await statements.confirm_statement(statement.id, "", who=D1, uow=uow, clock=clock,
                                           scopes=scopes)
    assert len(uow.published_of(STATEMENT_CONFIRMED)) == 1


async def test_the_dealer_disputes_a_line_and_can_no_longer_confirm(world):
    uow, scopes, clock, _ = world
    statement = await issue(world)
    with pytest.raises(InvalidArgument):
        await statements.dispute_statement_line(Dispute(statement.id, 9, "wrong"), who=D1,
                                                uow=uow, scopes=scopes)
    disputed = await statements.dispute_statement_line(
        Dispute(statement.id, 3, "we were billed twice", 4_000), who=D1, uow=uow,
        scopes=scopes)
    assert disputed.status == DISPUTED
    line = disputed.line(3)
    assert line.disputed and line.disputed_amount_minor == 4_000
    assert uow.statements.rows[statement.id].line(3).dispute_reason == "we were billed twice"
    assert uow.published_of(STATEMENT_DISPUTED)[0].line_no == 3
    with pytest.raises(FailedPrecondition):
        await statements.confirm_statement(statement.id, "", who=D1, uow=uow, clock=clock,
                                           scopes=scopes)


async def test_another_dealers_statement_is_not_found_and_not_listed(world):
    uow, scopes, _, _ = world
    statement = await issue(world)
    with pytest.raises(NotFound):
        await statements.get_statement(statement.id, who=D2, uow=uow, scopes=scopes)
    with pytest.raises(NotFound):
        await statements.dispute_statement_line(Dispute(statement.id, 3, "not mine"),
                                                who=D2, uow=uow, scopes=scopes)
    with pytest.raises(NotFound):
        await issue(world, who=Principal(subject="user:f2", roles=frozenset({"finance"})))
    listed = await statements.list_statements(StatementQuery(), PageRequest(), who=D2,
                                              uow=uow, scopes=scopes)
    assert listed.items == []
    mine = await statements.list_statements(StatementQuery(), PageRequest(), who=D1,
                                            uow=uow, scopes=scopes)
    assert [s.id for s in mine.items] == [statement.id] and mine.items[0].lines == []
