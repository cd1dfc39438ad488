"""Normalized addresses, the duplicate check's second signal: two customers at the same
street and number of the same division are the same customer whatever their names (a
hospital with two official names, 西京医院 and 空军军医大学第一附属医院). Pure Python: the
division names come from ``shared.divisions`` (cpca's table)."""

from __future__ import annotations

import re

from shared import divisions
from shared.text import chinese_number, to_half_width, to_simplified

_NOT_WORD = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff]+")
# The street (路, 街, 大道, 巷, 弄, 胡同…) and its number, the first pair in the address.
_STREET_NUMBER = re.compile(
    r"([\u4e00-\u9fff0-9]{1,12}?(?:大道|大街|路|街|道|巷|弄|胡同|里))"
    r"([0-9]{1,5}|[零一二三四五六七八九十百]{1,6})号")
_CN = {chinese_number(n): n for n in range(1, 1000)}


def _division_names(division_code: str) -> list[str]:
    """The names of the division and those above it, full and short, longest first."""
    table = divisions.names()
    codes = {divisions.province_of(division_code), divisions.city_of(division_code),
             division_code}
    found: set[str] = set()
    for code in codes:
        name = table.get(code, "")
        if name:
            found.update({name, divisions.short_name(name)})
    return sorted(found, key=len, reverse=True)


def address_key(address: str, division_code: str) -> str:
    """``<division>|<street><number>`` for an address whose street and number can be
    read ("上海市徐汇区宜山路600号" → "310104|宜山路600"); empty otherwise (no key means
    no address evidence, never a guess)."""
    if not address or not divisions.is_code(division_code):
        return ""
    text = _NOT_WORD.sub("", to_simplified(to_half_width(address)).lower())
    # The division names are dropped wherever they stand first (上海市徐汇区…, 徐汇区…).
    names = _division_names(division_code)
    stripped = True
    while stripped:
        stripped = False
        for name in names:
            if text.startswith(name) and len(text) > len(name):
                text = text[len(name):]
                stripped = True
    match = _STREET_NUMBER.search(text)
    if not match:
        return ""
    street, number = match.groups()
    if not number.isdigit():
        number = str(_CN.get(number, number))
    return f"{division_code}|{street}{int(number) if number.isdigit() else number}"
