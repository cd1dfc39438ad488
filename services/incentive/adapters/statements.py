"""Statements as XLSX. Every text cell is data, never a formula (shared/safecells.py)."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from services.incentive.domain.dealers import Dealer
from services.incentive.domain.settlement import Settlement
from shared.safecells import safe_cell

KIND_LABELS = {"rebate": "返利 rebate", "commission": "佣金 commission",
               "adjustment": "调整 adjustment", "carried_forward": "结转 carried forward"}


def _yuan(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


class XlsxStatements:
    def render(self, settlement: Settlement, dealer: Dealer | None) -> tuple[str, bytes]:
        book = Workbook()
        sheet = book.active
        sheet.title = "返利结算单"
        bold = Font(bold=True)
        header = [("结算单 Statement", settlement.id or "provisional 预估"),
                  ("经销商 Dealer", dealer.name if dealer else settlement.dealer_id),
                  ("经销商ID Dealer id", settlement.dealer_id),
                  ("销售公司 Selling company", settlement.selling_company),
                  ("期间 Period", settlement.period.label),
                  ("状态 Status", settlement.status.value)]
        for label, value in header:
            sheet.append([label, safe_cell(value)])
            sheet.cell(row=sheet.max_row, column=1).font = bold
        sheet.append([])
        sheet.append(["类型 Kind", "方案/规则 Program or rule", "版本 Version", "档位 Tier",
                      "客户来源 Source", "产品线 Product line", "费率 Rate (bps)",
                      "期间 Period", "数量 Quantity", "基数 Base", "金额 Amount",
                      "来源 Sources"])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        for line in settlement.lines:
            sheet.append([KIND_LABELS.get(line.kind.value, line.kind.value),
                          safe_cell(line.scheme_name or line.scheme_id), line.scheme_version,
                          line.tier, safe_cell(line.customer_source), safe_cell(line.product_line),
                          line.rate_bps, f"{line.period_start} ~ {line.period_end}",
                          line.quantity, _yuan(line.base_minor), _yuan(line.amount_minor),
                          safe_cell(", ".join(line.sources))])
        sheet.append([])
        sheet.append(["合计 Total", _yuan(settlement.total_minor)])
        sheet.cell(row=sheet.max_row, column=1).font = bold
        buffer = io.BytesIO()
        book.save(buffer)
        return (f"返利结算单-{settlement.dealer_id[:8]}-{settlement.period.label}.xlsx",
                buffer.getvalue())
