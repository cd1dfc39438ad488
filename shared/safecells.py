"""The one rule for every cell the product writes to XLSX or CSV (OWASP CSV injection):
text starting with = + - @ tab or carriage return is a formula to a spreadsheet, so it is
written with a leading apostrophe and shows as the text it is. Numbers stay numbers."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The same starts as a regular expression, for column-wise writers (polars).
FORMULA_START_PATTERN = r"^[=+\-@\t\r]"


def safe_cell(value):
    """``value`` as a cell a spreadsheet never evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values) -> list:
    """A row of cells, each made safe."""
    return [safe_cell(value) for value in values]


def safe_text_column(expr):
    """A polars text column with every cell made safe as ``safe_cell`` does."""
    import polars as pl

    text = expr.cast(pl.Utf8)
    return pl.when(text.str.contains(FORMULA_START_PATTERN)).then(pl.lit("'") + text).otherwise(
        text)


def is_formula(value) -> bool:
    """What a spreadsheet would evaluate: the check exports are tested with."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)
