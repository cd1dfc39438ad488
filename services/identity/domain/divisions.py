"""GB/T 2260 administrative division codes, read from the table bundled with the ``cpca``
package (its adcodes.csv, 12-digit codes whose first six digits are the GB/T 2260 code).
No table is written by hand here. Pure lookups once loaded."""

from __future__ import annotations

import csv
import functools
import importlib.util
from pathlib import Path

MUNICIPALITY_PROVINCES = frozenset({"11", "12", "31", "50"})  # 北京 天津 上海 重庆
_PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def _adcodes_path() -> Path:
    # find_spec does not execute cpca/__init__ (which needs pkg_resources at import time).
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (GB/T 2260 division data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"


@functools.cache
def divisions() -> dict[str, str]:
    """Six-digit code → name, e.g. "310000" → "上海市"."""
    table: dict[str, str] = {}
    with _adcodes_path().open(encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            code = record["adcode"][:6]
            if len(code) == 6 and code.isdigit():
                table.setdefault(code, record["name"])
    return table


def is_known(code: str) -> bool:
    return len(code) == 6 and code.isdigit() and code in divisions()


def level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "district"


def province_of(code: str) -> str:
    return code[:2] + "0000"


def city_of(code: str) -> str:
    """The city-level code a code belongs to (the province for 直辖市 and provinces)."""
    if level(code) == "province" or code[:2] in MUNICIPALITY_PROVINCES:
        return province_of(code)
    return code[:4] + "00"


def short_name(name: str) -> str:
    """"上海市" → "上海", "广东省" → "广东"; names like "黔东南苗族侗族自治州" stay whole."""
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def city_name(code: str) -> str:
    """Short name of the city a division code lies in, for derived tags ("上海", "深圳")."""
    table = divisions()
    city = city_of(code)
    name = table.get(city, "")
    if not name or name in _PLACEHOLDER_NAMES:
        name = table.get(province_of(code), "")
    return short_name(name)


def covers(territory_code: str, code: str) -> bool:
    """Whether a territory code (province, city or district) contains ``code``."""
    match level(territory_code):
        case "province":
            return code[:2] == territory_code[:2]
        case "city":
            return code[:4] == territory_code[:4]
        case _:
            return code == territory_code
