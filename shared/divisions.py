"""GB/T 2260 administrative division codes: names (from the table bundled with the
``cpca`` package, its adcodes.csv, whose 12-digit codes start with the 6-digit GB/T 2260
code; no table is written by hand here), levels, containment, the city a code lies in.
Pure lookups once the table is loaded; every service that reasons about territories
uses this one module."""

from __future__ import annotations

import csv
import functools
import importlib.util
import re
from pathlib import Path

# 北京 天津 上海 重庆: each is one city whose districts (and counties) lie directly below.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
_CODE = re.compile(r"^\d{6}$")
_PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def _adcodes_path() -> Path:
    # find_spec does not execute cpca/__init__ (which needs pkg_resources at import time).
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (GB/T 2260 division data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"


@functools.cache
def names() -> dict[str, str]:
    """Six-digit code → name, e.g. "310000" → "上海市"."""
    table: dict[str, str] = {}
    with _adcodes_path().open(encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            code = record["adcode"][:6]
            if len(code) == 6 and code.isdigit():
                table.setdefault(code, record["name"])
    return table


def is_code(code: str) -> bool:
    """Six digits (whether or not the code exists)."""
    return bool(_CODE.match(code or "")) and code != "000000"


def is_known(code: str) -> bool:
    """A code that exists in the GB/T 2260 table."""
    return is_code(code) and code in names()


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


def province_of(code: str) -> str:
    return code[:2] + "0000" if is_code(code) else ""


def city_of(code: str) -> str:
    """The city-level code a code lies in; empty for a bare province. A municipality is
    one city: every district (and county) maps to its xx0100 code."""
    if not is_code(code):
        return ""
    if code[:2] in MUNICIPALITIES:
        return code[:2] + "0100"
    if level(code) == "province":
        return ""
    return code[:4] + "00"


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


def short_name(name: str) -> str:
    """"上海市" → "上海", "广东省" → "广东"; names like "黔东南苗族侗族自治州" stay whole."""
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def city_name(code: str) -> str:
    """Short name of the city a code lies in ("上海", "深圳"); the province's for a bare
    province code or where the table has only a placeholder (市辖区) for the city."""
    table = names()
    name = table.get(city_of(code), "")
    if not name or name in _PLACEHOLDER_NAMES:
        name = table.get(province_of(code), "")
    return short_name(name)
