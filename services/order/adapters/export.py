"""A statement as an XLSX workbook (openpyxl): the header, every line, the totals.
Text people typed (descriptions, dispute reasons) is never written as a formula."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from services.order.domain.statements import KIND_LABELS, ExportedFile, LineKind, Statement
from shared.safecells import safe_row

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_NAMES = {1: "issued", 2: "confirmed", 3: "disputed", 4: "superseded"}


def _yuan(minor: int) -> Decimal:
    """Yuan with two decimals, exact (a Decimal, never a float)."""
    return Decimal(minor).scaleb(-2)


def to_xlsx(statement: Statement) -> ExportedFile:
    book = Workbook()
    sheet = book.active
    sheet.title = "对账单"
    bold = Font(bold=True)
    header = [
        ("对账单 Statement", statement.id), ("经销商 Dealer", statement.dealer_id),
        ("销售公司 Selling company", statement.selling_company),
        ("期间 Period", f"{statement.period_start} ~ {statement.period_end}"),
        ("状态 Status", STATUS_NAMES.get(statement.status, "unspecified")),
        ("期初余额 Opening balance", _yuan(statement.opening_minor)),
    ]
    for label, value in header:
        sheet.append(safe_row([label, value]))
        sheet.cell(row=sheet.max_row, column=1).font = bold
    sheet.append([])
    columns = ["行 Line", "日期 Date", "类型 Kind", "单据 Reference", "摘要 Description",
               "借方 Debit", "贷方 Credit", "余额 Balance", "异议 Disputed", "异议原因 Reason"]
    sheet.append(columns)
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for line in statement.lines:
        sheet.append(safe_row([
            line.line_no, line.date, KIND_LABELS.get(LineKind(line.kind), ""), line.ref_id,
            line.description, _yuan(line.debit_minor), _yuan(line.credit_minor),
            _yuan(line.balance_minor), "是 yes" if line.disputed else "",
            line.dispute_reason]))
    sheet.append([])
    for label, amount in (("借方合计 Total debit", statement.total_debit_minor),
                          ("贷方合计 Total credit", statement.total_credit_minor),
                          ("期末余额 Closing balance", statement.closing_minor)):
        sheet.append([label, _yuan(amount)])
        sheet.cell(row=sheet.max_row, column=1).font = bold
    for column, width in zip("ABCDEFGHIJ", (24, 12, 22, 38, 40, 14, 14, 14, 10, 30),
                             strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return ExportedFile(filename=f"对账单-{statement.period_start}-{statement.period_end}.xlsx",
                        content_type=XLSX, content=buffer.getvalue())
