"""Statements (对账单): issued by finance from the ledger, confirmed or disputed line by
line by the dealer, exported as XLSX. Also books rebate credits from incentive."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font
from qudao.common.v1 import files_pb2
from qudao.order.v1 import events_pb2, order_pb2
from sqlalchemy import func, select, update

from services.order.adapters.orm import (
    InvoiceRow,
    OrderRow,
    PaymentRow,
    RebateCreditRow,
    ShipmentLineRow,
    ShipmentRow,
    StatementLineRow,
    StatementRow,
)
from services.order.domain.accounts import CREDIT_NOTE
from services.order.domain.orders import OrderStatus
from services.order.domain.statements import Entry, LineKind, compute_statement
from services.order.usecases.common import (
    DEALER_STAFF,
    STATEMENT_ISSUERS,
    UseCaseBase,
    day,
    now,
    statement_to_proto,
)
from shared.context import current_principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.order import (
    STATEMENT_CONFIRMED,
    STATEMENT_DISPUTED,
    STATEMENT_ISSUED,
)

ISSUED, CONFIRMED, DISPUTED, SUPERSEDED = 1, 2, 3, 4
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KIND_LABELS = {
    LineKind.ORDER: "订单 order", LineKind.SHIPMENT: "发货 shipment",
    LineKind.INVOICE: "发票 invoice", LineKind.PAYMENT: "回款 payment",
    LineKind.CREDIT_NOTE: "红字发票 credit note", LineKind.REBATE_CREDIT: "返利 rebate",
    LineKind.ADJUSTMENT: "调整 adjustment",
}


class StatementUseCases(UseCaseBase):
    async def _entries(self, session, dealer_id: str, company: str, end: str) -> list[Entry]:
        """Every ledger entry of the account up to ``end`` plus, for information, the
        orders and shipments (any date up to end; the domain picks the period)."""
        entries: list[Entry] = []
        for row in (await session.scalars(select(InvoiceRow).where(
                InvoiceRow.dealer_id == dealer_id, InvoiceRow.selling_company == company,
                InvoiceRow.issued_on <= end))).all():
            kind = LineKind.CREDIT_NOTE if row.kind == CREDIT_NOTE else LineKind.INVOICE
            label = f"{KIND_LABELS[kind]} {row.invoice_no or row.id}"
            if row.return_id:
                label += f" (return {row.return_id})"
            entries.append(Entry(kind, row.id, row.issued_on, row.amount_minor, label))
        for row in (await session.scalars(select(PaymentRow).where(
                PaymentRow.dealer_id == dealer_id, PaymentRow.selling_company == company,
                PaymentRow.received_on <= end))).all():
            entries.append(Entry(LineKind.PAYMENT, row.id, row.received_on, row.amount_minor,
                                 f"{KIND_LABELS[LineKind.PAYMENT]} {row.method} "
                                 f"{row.reference}".strip()))
        for row in (await session.scalars(select(RebateCreditRow).where(
                RebateCreditRow.dealer_id == dealer_id,
                RebateCreditRow.selling_company == company,
                RebateCreditRow.credited_on <= end))).all():
            entries.append(Entry(LineKind.REBATE_CREDIT, row.credit_id, row.credited_on,
                                 row.amount_minor,
                                 f"{KIND_LABELS[LineKind.REBATE_CREDIT]} {row.description}"))
        for row in (await session.scalars(select(OrderRow).where(
                OrderRow.dealer_id == dealer_id, OrderRow.selling_company == company,
                OrderRow.status.notin_([OrderStatus.REJECTED, OrderStatus.CANCELLED])))).all():
            entries.append(Entry(LineKind.ORDER, row.id, row.submitted_at.date().isoformat(),
                                 row.total_minor,
                                 f"{KIND_LABELS[LineKind.ORDER]} {row.client_order_ref}"))
        from services.order.adapters.orm import OrderLineRow

        value = func.sum(ShipmentLineRow.quantity * OrderLineRow.unit_price_minor)
        for shipment_id, ship_date, waybill, amount in (await session.execute(
                select(ShipmentRow.id, ShipmentRow.ship_date, ShipmentRow.waybill_no, value)
                .join(ShipmentLineRow, ShipmentLineRow.shipment_id == ShipmentRow.id)
                .join(OrderLineRow, (OrderLineRow.order_id == ShipmentLineRow.order_id)
                      & (OrderLineRow.line_no == ShipmentLineRow.order_line_no))
                .where(ShipmentRow.dealer_id == dealer_id,
                       ShipmentRow.selling_company == company, ShipmentRow.ship_date <= end)
                .group_by(ShipmentRow.id, ShipmentRow.ship_date,
                          ShipmentRow.waybill_no))).all():
            entries.append(Entry(LineKind.SHIPMENT, shipment_id, ship_date, int(amount or 0),
                                 f"{KIND_LABELS[LineKind.SHIPMENT]} {waybill}".strip()))
        return entries

    async def issue_statement(self, request: order_pb2.IssueStatementRequest):
        if not request.dealer_id:
            raise InvalidArgument.field("dealer_id", "is required")
        (await self.scope("statement.issue")).require(request.dealer_id)
        principal = self.require_role(*STATEMENT_ISSUERS, what="issue statements")
        start = day(request.period_start, "period_start")
        end = day(request.period_end, "period_end")
        if end < start:
            raise InvalidArgument.field("period_end", "is before period_start")
        company = self.company(request.selling_company)
        async with self.db.write() as session:
            computed = compute_statement(
                await self._entries(session, request.dealer_id, company, end), start, end)
            previous = (await session.scalars(select(StatementRow).where(
                StatementRow.dealer_id == request.dealer_id,
                StatementRow.selling_company == company, StatementRow.period_start == start,
                StatementRow.period_end == end, StatementRow.status != SUPERSEDED)
                .with_for_update())).all()
            for old in previous:
                old.status = SUPERSEDED
            row = StatementRow(
                id=str(uuid.uuid4()), dealer_id=request.dealer_id, selling_company=company,
                period_start=start, period_end=end, status=ISSUED, currency=self.currency,
                opening_minor=computed.opening, total_debit_minor=computed.total_debit,
                total_credit_minor=computed.total_credit, closing_minor=computed.closing,
                issued_at=now(), issued_by=principal.subject, confirmed_by="",
                supersedes_statement_id=previous[-1].id if previous else "",
                lines=[StatementLineRow(
                    line_no=line.line_no, kind=int(line.entry.kind), ref_id=line.entry.ref_id,
                    date=line.entry.day, description=line.entry.description[:300],
                    debit_minor=line.debit, credit_minor=line.credit,
                    balance_minor=line.balance, disputed=False, dispute_reason="")
                    for line in computed.lines])
            session.add(row)
            await session.flush()
            message = statement_to_proto(row)
            await self.outbox.record(session, STATEMENT_ISSUED,
                                     events_pb2.StatementIssued(statement=message), row.id)
        return message

    async def _statement(self, session, statement_id: str, action: str) -> StatementRow:
        scope = await self.scope(action)
        row = await session.get(StatementRow, statement_id, populate_existing=True)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"statement {statement_id} not found")
        return row

    async def get_statement(self, statement_id: str):
        async with self.db.read() as session:
            return statement_to_proto(await self._statement(session, statement_id,
                                                            "order.read"))

    async def list_statements(self, dealer_id: str, company: str, statuses, size: int,
                              token: str):
        from shared.pagination import decode_page_token, encode_page_token

        scope = await self.scope("order.read")
        offset = decode_page_token(token)
        query = select(StatementRow).order_by(StatementRow.period_start.desc(),
                                              StatementRow.issued_at.desc())
        if dealer_id:
            if not scope.allows(dealer_id):
                return [], ""
            query = query.where(StatementRow.dealer_id == dealer_id)
        elif not scope.all_dealers:
            query = query.where(StatementRow.dealer_id.in_(scope.dealer_ids))
        if company:
            query = query.where(StatementRow.selling_company == company)
        if statuses:
            query = query.where(StatementRow.status.in_(list(statuses)))
        async with self.db.read() as session:
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
            statements = [statement_to_proto(r, with_lines=False) for r in rows[:size]]
        return statements, encode_page_token(offset + size) if len(rows) > size else ""

    def _dealer_side(self) -> None:
        if not current_principal().has_role(*DEALER_STAFF):
            raise PermissionDenied("only the dealer's staff confirm or dispute statements")

    async def confirm_statement(self, statement_id: str, comment: str):
        principal = current_principal()
        async with self.db.write() as session:
            await self._statement(session, statement_id, "statement.confirm")
            self._dealer_side()
            result = await session.execute(
                update(StatementRow)
                .where(StatementRow.id == statement_id, StatementRow.status == ISSUED)
                .values(status=CONFIRMED, confirmed_at=now(), confirmed_by=principal.subject)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise FailedPrecondition(f"statement {statement_id} is not open for "
                                         "confirmation (already confirmed, disputed or "
                                         "superseded)", reason="NOT_ISSUED")
            row = await self._statement(session, statement_id, "statement.confirm")
            message = statement_to_proto(row)
            await self.outbox.record(session, STATEMENT_CONFIRMED,
                                     events_pb2.StatementConfirmed(statement=message),
                                     statement_id)
        return message

    async def dispute_statement_line(self, request: order_pb2.DisputeStatementLineRequest):
        if not request.reason.strip():
            raise InvalidArgument.field("reason", "is required")
        async with self.db.write() as session:
            row = await self._statement(session, request.statement_id, "statement.confirm")
            self._dealer_side()
            if row.status not in (ISSUED, DISPUTED):
                raise FailedPrecondition(f"statement {row.id} can no longer be disputed",
                                         reason="NOT_ISSUED")
            line = next((x for x in row.lines if x.line_no == request.line_no), None)
            if line is None:
                raise InvalidArgument.field("line_no", f"statement has no line "
                                                       f"{request.line_no}")
            line.disputed = True
            line.dispute_reason = request.reason.strip()[:500]
            if request.HasField("disputed_amount"):
                line.disputed_amount_minor = request.disputed_amount.amount_minor
            row.status = DISPUTED
            await session.flush()
            message = statement_to_proto(row)
            await self.outbox.record(session, STATEMENT_DISPUTED,
                                     events_pb2.StatementDisputed(
                                         statement=message, line_no=request.line_no,
                                         reason=line.dispute_reason), row.id)
        return message

    async def export_statement(self, statement_id: str, export_format: int):
        if export_format not in (0, 1):
            raise InvalidArgument.field("format", "only XLSX is available")
        statement = await self.get_statement(statement_id)
        book = Workbook()
        sheet = book.active
        sheet.title = "对账单"
        bold = Font(bold=True)
        status_name = order_pb2.StatementStatus.Name(statement.status).removeprefix(
            "STATEMENT_STATUS_").lower()
        header = [
            ("对账单 Statement", statement.id), ("经销商 Dealer", statement.dealer_id),
            ("销售公司 Selling company", statement.selling_company),
            ("期间 Period", f"{statement.period_start} ~ {statement.period_end}"),
            ("状态 Status", status_name),
            ("期初余额 Opening balance", _yuan(statement.opening_balance.amount_minor)),
        ]
        for label, value in header:
            sheet.append([label, value])
            sheet.cell(row=sheet.max_row, column=1).font = bold
        sheet.append([])
        columns = ["行 Line", "日期 Date", "类型 Kind", "单据 Reference", "摘要 Description",
                   "借方 Debit", "贷方 Credit", "余额 Balance", "异议 Disputed", "异议原因 Reason"]
        sheet.append(columns)
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        for line in statement.lines:
            sheet.append([line.line_no, line.date, KIND_LABELS.get(LineKind(line.kind), ""),
                          line.ref_id, line.description, _yuan(line.debit.amount_minor),
                          _yuan(line.credit.amount_minor), _yuan(line.balance.amount_minor),
                          "是 yes" if line.disputed else "", line.dispute_reason])
        sheet.append([])
        for label, amount in (("借方合计 Total debit", statement.total_debit.amount_minor),
                              ("贷方合计 Total credit", statement.total_credit.amount_minor),
                              ("期末余额 Closing balance",
                               statement.closing_balance.amount_minor)):
            sheet.append([label, _yuan(amount)])
            sheet.cell(row=sheet.max_row, column=1).font = bold
        for column, width in zip("ABCDEFGHIJ", (24, 12, 22, 38, 40, 14, 14, 14, 10, 30),
                                 strict=True):
            sheet.column_dimensions[column].width = width
        buffer = io.BytesIO()
        book.save(buffer)
        return files_pb2.ExportedFile(
            filename=f"对账单-{statement.period_start}-{statement.period_end}.xlsx",
            content_type=XLSX, content=buffer.getvalue())



def _yuan(minor: int) -> Decimal:
    """Yuan with two decimals, exact (a Decimal, never a float)."""
    return Decimal(minor).scaleb(-2)
