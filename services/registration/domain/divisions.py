"""GB/T 2260 division codes: containment (a province 310000 contains its cities and
districts 31xxxx), the city a district belongs to, and territories. Pure Python."""

from __future__ import annotations

import re

MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
_CODE = re.compile(r"^\d{6}$")


def is_code(code: str) -> bool:
    return bool(_CODE.match(code or "")) and code != "000000"


def level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "district"


def prefix(code: str) -> str:
    """The significant digits: 310000 → 31, 310100 → 3101, 310104 → 310104."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def contains(outer: str, inner: str) -> bool:
    """Whether division ``outer`` contains (or is) division ``inner``."""
    if not (is_code(outer) and is_code(inner)):
        return False
    if outer[:2] in MUNICIPALITIES and level(outer) == "city":
        # 310100 (市辖区) and 310000 hold the same districts in practice.
        return (inner.startswith(outer[:2]) and level(inner) != "province") or inner == outer
    return inner.startswith(prefix(outer))


def in_territory(territory: list[str] | tuple[str, ...], code: str) -> bool:
    return any(contains(outer, code) for outer in territory)


def city_of(code: str) -> str:
    """The city-level code fuzzy matching is blocked by; empty for a bare province.

    A municipality (北京 上海 天津 重庆) is one city: every district maps to its 0100 code."""
    if not is_code(code):
        return ""
    if code[:2] in MUNICIPALITIES:
        return code[:2] + "0100"
    if level(code) == "province":
        return ""
    return code[:4] + "00"


def region_of(code: str) -> str:
    """The province-level code."""
    return code[:2] + "0000" if is_code(code) else ""
