"""Bulk imports (customers, leads): all or nothing, every failing row reported with its
row number as the user sees it in the file. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import FieldViolation

# The stable code of a failing field, by the field it names.
_CODES = {"name": "INVALID_NAME", "credit_code": "INVALID_CREDIT_CODE",
          "division_code": "UNKNOWN_DIVISION", "customer_name": "INVALID_NAME",
          "product_line": "MISSING_PRODUCT_LINE"}


@dataclass(frozen=True)
class RowError:
    row_number: int
    column: str  # the header as in the file; empty for the whole row
    code: str
    message_zh: str
    message_en: str
    value: str = ""


@dataclass(frozen=True)
class ImportReport:
    accepted: bool
    created: int = 0
    # Of the created leads, how many were assigned at once.
    assigned: int = 0
    errors: tuple[RowError, ...] = ()


def row_error(number: int, column: str, violation: FieldViolation, value: str) -> RowError:
    """A row's field violation as a row error (``row.name`` → column ``name``)."""
    field_name = violation.field.split(".", 1)[-1]
    code = _CODES.get(field_name.split("[")[0], "INVALID_VALUE")
    return RowError(row_number=number, column=column, code=code,
                    message_zh=f"{column or field_name}：{violation.description}",
                    message_en=f"{field_name}: {violation.description}", value=value)
