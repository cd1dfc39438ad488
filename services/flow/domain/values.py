"""Reading the values people type into sell-through files: dates in the common formats,
quantities with units or thousands separators, amounts in yuan. Pure Python, no I/O.

Each parser returns the value or raises ``ValueProblem`` with a stable code; the
validator calls them once per distinct cell text, never once per row."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


class ValueProblem(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


BAD_DATE = "BAD_DATE"
BAD_QUANTITY = "BAD_QUANTITY"
BAD_AMOUNT = "BAD_AMOUNT"

# Excel's day 0 is 1899-12-30 (its 1900 leap-year bug included); serials between these
# bounds are 1954..2119, far from any quantity or year a cell would hold by mistake.
_EXCEL_EPOCH = date(1899, 12, 30)
_SERIAL_MIN, _SERIAL_MAX = 20_000, 80_000
_YMD = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{5}(?:\.0+)?$")
# A datetime as XLSX cells and some exports write it: the time part is dropped.
_WITH_TIME = re.compile(r"^(.+?)[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_UNIT = re.compile(r"^([+-]?[\d,，]+(?:\.0+)?)\s*(?:个|支|盒|箱|件|套|只|片|瓶|袋|包|台|条|根|"
                   r"把|副|张|卷|组|pcs?|ea|units?|boxes|box)?$", re.IGNORECASE)
_MONEY = re.compile(r"^[¥￥]?\s*([+-]?[\d,]+(?:\.\d+)?)\s*(?:元|rmb|cny)?$", re.IGNORECASE)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_date(text: str) -> date:
    """2026-03-01, 2026/3/1, 2026.3.1, 20260301, 2026年3月1日, an Excel serial (46082),
    with or without a time part."""
    value = _clean(text)
    match = _WITH_TIME.match(value)
    if match:
        value = match.group(1).strip()
    try:
        if match := _YMD.match(value):
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if match := _COMPACT.match(value):
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if _SERIAL.match(value):
            serial = int(value.split(".")[0])
            if _SERIAL_MIN <= serial <= _SERIAL_MAX:
                return _EXCEL_EPOCH + timedelta(days=serial)
    except ValueError:
        raise ValueProblem(BAD_DATE, f"{text!r} is not a real calendar date") from None
    raise ValueProblem(BAD_DATE, f"{text!r} is not a date (e.g. 2026-03-01, 2026/3/1, "
                                 "20260301, 2026年3月1日)")


def parse_quantity(text: str) -> int:
    """A positive whole number of units: "12", "1,200", "12盒", "12 pcs", "12.0"."""
    value = _clean(text)
    match = _UNIT.match(value)
    if not match:
        raise ValueProblem(BAD_QUANTITY, f"{text!r} is not a whole number of units")
    digits = match.group(1).replace(",", "").replace("，", "")
    if not re.fullmatch(r"[+-]?\d+(?:\.0+)?", digits):
        raise ValueProblem(BAD_QUANTITY, f"{text!r} is not a whole number of units")
    quantity = int(digits.split(".")[0])
    if quantity <= 0:
        raise ValueProblem(BAD_QUANTITY, f"{text!r}: the quantity must be at least 1")
    if quantity > 10_000_000:
        raise ValueProblem(BAD_QUANTITY, f"{text!r}: more than 10,000,000 units in one row")
    return quantity


def parse_amount(text: str) -> int:
    """An amount in yuan ("1,250.50", "¥1250.5", "1250.50元") as fen. Rounded half up
    to the fen; never a float."""
    value = _clean(text)
    match = _MONEY.match(value)
    if not match:
        raise ValueProblem(BAD_AMOUNT, f"{text!r} is not an amount in yuan")
    digits = match.group(1).replace(",", "")
    try:
        amount = Decimal(digits)
    except InvalidOperation:
        raise ValueProblem(BAD_AMOUNT, f"{text!r} is not an amount in yuan") from None
    fen = int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if fen < 0:
        raise ValueProblem(BAD_AMOUNT, f"{text!r}: the amount must not be negative")
    if fen > 10**15:
        raise ValueProblem(BAD_AMOUNT, f"{text!r}: the amount is out of range")
    return fen
