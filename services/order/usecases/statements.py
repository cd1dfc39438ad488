"""Statements (对账单), as handlers: issued by finance from the ledger (issuing a period
again supersedes its open statement), confirmed or disputed line by line by the
dealer's staff, exported as a spreadsheet."""

from __future__ import annotations

from dataclasses import replace

from services.order import messages
from services.order.domain.statements import (
    CONFIRMED,
    DEALER_STAFF,
    DISPUTED,
    ISSUED,
    STATEMENT_ISSUERS,
    Dispute,
    ExportedFile,
    IssuedLine,
    Statement,
    StatementQuery,
    compute_statement,
)
from services.order.usecases.common import day, require_role, visible
from services.order.usecases.ports import OrderUnitOfWork, StatementExport
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.order import STATEMENT_CONFIRMED, STATEMENT_DISPUTED, STATEMENT_ISSUED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def issue_statement(dealer_id: str, company: str, period_start: str, period_end: str,
                          *, who: Principal, uow: OrderUnitOfWork, clock: Clock,
                          ids: IdSource, scopes: Scopes, currency: str) -> Statement:
    if not dealer_id:
        raise InvalidArgument.field("dealer_id", "is required")
    (await scopes.resolve(who, "statement.issue")).require(dealer_id)
    require_role(who, STATEMENT_ISSUERS, "issue statements")
    start = day(period_start, "period_start")
    end = day(period_end, "period_end")
    if end < start:
        raise InvalidArgument.field("period_end", "is before period_start")
    async with uow:
        computed = compute_statement(await uow.statements.entries(dealer_id, company, end),
                                     start, end)
        superseded = await uow.statements.supersede(dealer_id, company, start, end)
        statement = Statement(
            id=ids.new_id(), dealer_id=dealer_id, selling_company=company,
            period_start=start, period_end=end, status=ISSUED, currency=currency,
            opening_minor=computed.opening, total_debit_minor=computed.total_debit,
            total_credit_minor=computed.total_credit, closing_minor=computed.closing,
            issued_at=clock.now(), issued_by=who.subject,
            supersedes_statement_id=superseded[-1] if superseded else "",
            lines=[IssuedLine(line.line_no, int(line.entry.kind), line.entry.ref_id,
                              line.entry.day, line.entry.description[:300], line.debit,
                              line.credit, line.balance) for line in computed.lines])
        await uow.statements.add(statement)
        uow.events.record(STATEMENT_ISSUED, messages.statement_issued(statement), statement.id)
        await uow.commit()
    return statement


async def _statement(uow: OrderUnitOfWork, scopes: Scopes, who: Principal,
                     statement_id: str, action: str) -> Statement:
    scope = await scopes.resolve(who, action)
    statement = await uow.statements.get(statement_id)
    if statement is None or not scope.allows(statement.dealer_id):
        raise NotFound(f"statement {statement_id} not found")
    return statement


async def get_statement(statement_id: str, *, who: Principal, uow: OrderUnitOfWork,
                        scopes: Scopes) -> Statement:
    async with uow.read():
        return await _statement(uow, scopes, who, statement_id, "order.read")


async def list_statements(query: StatementQuery, page: PageRequest, *, who: Principal,
                          uow: OrderUnitOfWork, scopes: Scopes) -> Page[Statement]:
    """Newest period first, without their lines."""
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    async with uow.read():
        return await uow.statements.page(replace(query, dealer_ids=dealers), page)


def _dealer_side(who: Principal) -> None:
    if not who.has_role(*DEALER_STAFF):
        raise PermissionDenied("only the dealer's staff confirm or dispute statements")


async def confirm_statement(statement_id: str, comment: str, *, who: Principal,
                            uow: OrderUnitOfWork, clock: Clock, scopes: Scopes) -> Statement:
    async with uow:
        statement = await _statement(uow, scopes, who, statement_id, "statement.confirm")
        _dealer_side(who)
        confirmed = replace(statement, status=CONFIRMED, confirmed_at=clock.now(),
                            confirmed_by=who.subject)
        if not await uow.statements.confirm(confirmed):
            raise FailedPrecondition(f"statement {statement_id} is not open for confirmation "
                                     "(already confirmed, disputed or superseded)",
                                     reason="NOT_ISSUED")
        uow.events.record(STATEMENT_CONFIRMED, messages.statement_confirmed(confirmed),
                          statement_id)
        await uow.commit()
    return confirmed


async def dispute_statement_line(dispute: Dispute, *, who: Principal, uow: OrderUnitOfWork,
                                 scopes: Scopes) -> Statement:
    if not dispute.reason.strip():
        raise InvalidArgument.field("reason", "is required")
    async with uow:
        statement = await _statement(uow, scopes, who, dispute.statement_id,
                                     "statement.confirm")
        _dealer_side(who)
        if statement.status not in (ISSUED, DISPUTED):
            raise FailedPrecondition(f"statement {statement.id} can no longer be disputed",
                                     reason="NOT_ISSUED")
        line = statement.line(dispute.line_no)
        if line is None:
            raise InvalidArgument.field("line_no", f"statement has no line {dispute.line_no}")
        line.disputed = True
        line.dispute_reason = dispute.reason.strip()[:500]
        if dispute.amount_minor is not None:
            line.disputed_amount_minor = dispute.amount_minor
        statement.status = DISPUTED
        await uow.statements.save_dispute(statement, line)
        uow.events.record(STATEMENT_DISPUTED, messages.statement_disputed(statement, line),
                          statement.id)
        await uow.commit()
    return statement


async def export_statement(statement_id: str, export_format: int, *, who: Principal,
                           uow: OrderUnitOfWork, scopes: Scopes,
                           export: StatementExport) -> ExportedFile:
    if export_format not in (0, 1):
        raise InvalidArgument.field("format", "only XLSX is available")
    statement = await get_statement(statement_id, who=who, uow=uow, scopes=scopes)
    return export.to_xlsx(statement)
