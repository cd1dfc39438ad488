"""Targets (指标): what HQ expects of a dealer for a product line in a period, and the
achievement computed from the same facts as rebates. Pure Python."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from services.incentive.domain.periods import Period
from services.incentive.domain.tiers import Basis
from shared.errors import DomainError

MAX_BPS = 10_000


class TargetMeasure(enum.StrEnum):
    SELL_THROUGH_QUANTITY = "sell_through_quantity"
    SELL_THROUGH_AMOUNT = "sell_through_amount"
    PURCHASE_AMOUNT = "purchase_amount"

    @property
    def basis(self) -> Basis:
        return {TargetMeasure.SELL_THROUGH_QUANTITY: Basis.QUANTITY,
                TargetMeasure.SELL_THROUGH_AMOUNT: Basis.AMOUNT,
                TargetMeasure.PURCHASE_AMOUNT: Basis.PURCHASE_AMOUNT}[self]

    @classmethod
    def for_basis(cls, basis: Basis) -> TargetMeasure:
        return next(m for m in cls if m.basis is basis)


@dataclass(frozen=True)
class Target:
    dealer_id: str
    product_line: str
    period: Period
    measure: TargetMeasure
    value: int  # units, or minor units of currency
    currency: str = "CNY"
    updated_at: datetime | None = None
    updated_by: str = ""

    @property
    def key(self) -> tuple:
        return (self.dealer_id, self.product_line, self.period.start, self.period.kind,
                self.measure)


def share_bps(actual: int, target: int) -> int:
    if target <= 0:
        return 0
    return actual * MAX_BPS // target


# Accepted headers of a target file, Chinese or English.
COLUMNS = {
    "dealer": ("经销商", "经销商ID", "经销商编号", "统一社会信用代码", "dealer", "dealer_id"),
    "product_line": ("产品线", "product_line"),
    "period": ("期间", "期间/周期", "period"),
    "measure": ("指标类型", "measure"),
    "value": ("指标值", "指标", "value", "target"),
}
MEASURE_WORDS = {
    "数量": TargetMeasure.SELL_THROUGH_QUANTITY, "quantity": TargetMeasure.SELL_THROUGH_QUANTITY,
    "销量": TargetMeasure.SELL_THROUGH_QUANTITY,
    "金额": TargetMeasure.SELL_THROUGH_AMOUNT, "amount": TargetMeasure.SELL_THROUGH_AMOUNT,
    "销售金额": TargetMeasure.SELL_THROUGH_AMOUNT,
    "采购金额": TargetMeasure.PURCHASE_AMOUNT, "purchase_amount": TargetMeasure.PURCHASE_AMOUNT,
}
_YUAN = re.compile(r"^\d+(\.\d{1,2})?$")


@dataclass(frozen=True)
class RowProblem:
    column: str
    code: str
    zh: str
    en: str
    value: str = ""


def parse_value(text: str, measure: TargetMeasure) -> int:
    """Units for a quantity; yuan with at most two decimals (into fen) for amounts."""
    cleaned = text.replace(",", "").replace("，", "").strip()
    if measure is TargetMeasure.SELL_THROUGH_QUANTITY:
        if not cleaned.isdigit():
            raise ValueError("a whole number of units")
        return int(cleaned)
    if not _YUAN.match(cleaned):
        raise ValueError("an amount in yuan with at most two decimals")
    try:
        return int(Decimal(cleaned) * 100)
    except InvalidOperation:
        raise ValueError("an amount in yuan") from None


def parse_row(cells: dict[str, str]) -> tuple[dict, list[RowProblem]]:
    """One row of a target file (cells keyed by field, not header): the parsed fields or
    what is wrong with them."""
    problems: list[RowProblem] = []
    parsed: dict = {"dealer": cells.get("dealer", "").strip(),
                    "product_line": cells.get("product_line", "").strip()}
    for field, zh in (("dealer", "经销商"), ("product_line", "产品线")):
        if not parsed[field]:
            problems.append(RowProblem(field, "REQUIRED", f"{zh}不能为空", f"{field} is required"))
    try:
        parsed["period"] = Period.parse(cells.get("period", ""))
    except DomainError:
        problems.append(RowProblem("period", "INVALID_PERIOD",
                                   "期间格式应为 2026-03、2026-Q1 或 2026",
                                   "period must be 2026-03, 2026-Q1 or 2026",
                                   cells.get("period", "")))
    word = cells.get("measure", "").strip().lower() or "数量"
    measure = MEASURE_WORDS.get(word)
    if measure is None:
        problems.append(RowProblem("measure", "INVALID_MEASURE",
                                   "指标类型应为 数量、金额 或 采购金额",
                                   "measure must be quantity, amount or purchase_amount", word))
    else:
        parsed["measure"] = measure
        try:
            parsed["value"] = parse_value(cells.get("value", ""), measure)
        except ValueError as exc:
            problems.append(RowProblem("value", "INVALID_VALUE", "指标值无效",
                                       f"value must be {exc}", cells.get("value", "")))
    return parsed, problems
