"""Abbreviation and ordinal rules: how dealers shorten hospital names (北医三院, 郑大一附院,
省人医, 浙大一院, 附一). The rules are data, ``abbreviations.tsv`` next to this module, so HQ
extends them without touching code. Pure Python once the table is read.

A rule rewrites a normalized name into its *canonical* long form. The name index
rewrites both what it indexes and what it is asked, so a short form meets its long form
whichever of the two is the customer and which the query. Regional rules (省人医 means a
different hospital in every province; 交大 is 上海交通大学 in Shanghai, 西安交通大学 in Xi'an)
apply only where their scope covers the name's division."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from shared import divisions
from shared.text import normalize_name

TABLE = Path(__file__).with_name("abbreviations.tsv")
KINDS = ("name", "university", "ordinal")
_NUMERAL = "[一二三四五六七八九十]{1,3}"
# What may follow a university's name without being a hospital of it.
_NOT_A_HOSPITAL_OF = re.compile(r"^(大学|学院|医科|医学|科技|交通|医院$|院$|$)")


class RuleError(ValueError):
    """A bad line of the rule table, named by its line number."""


@dataclass(frozen=True)
class Rule:
    kind: str
    short: str
    long: str
    scope: str
    line: int

    def applies(self, division_code: str) -> bool:
        if not self.scope or self.scope == "province":
            return not self.scope or bool(_province_name(division_code))
        return division_code.startswith(self.scope)

    def long_in(self, division_code: str) -> str:
        return self.long.replace("{province}", _province_name(division_code))


def _province_name(division_code: str) -> str:
    """The full name of a province (江苏省, 广西壮族自治区); empty for the municipalities,
    whose "省人医" means nothing."""
    if not divisions.is_code(division_code) or division_code[:2] in divisions.MUNICIPALITIES:
        return ""
    return divisions.names().get(divisions.province_of(division_code), "")


class Rules:
    def __init__(self, rules: list[Rule]) -> None:
        self.names: dict[str, list[Rule]] = {}
        self.universities: list[Rule] = []
        self.ordinals: list[tuple[re.Pattern[str], str]] = []
        for rule in rules:
            if rule.kind == "name":
                self.names.setdefault(normalize_name(rule.short), []).append(rule)
            elif rule.kind == "university":
                self.universities.append(rule)
            else:
                self.ordinals.append((re.compile(rule.short.replace("N", _NUMERAL)),
                                      rule.long))
        # Longest first: 南方医 before 南医.
        self.universities.sort(key=lambda r: -len(r.short))

    def canonical(self, normalized: str, division_code: str = "") -> str:
        """The long form a normalized name stands for under the rules; the name itself
        when no rule applies."""
        if not normalized:
            return normalized
        text = self._named(normalized, division_code) or normalized
        for pattern, replacement in self.ordinals:
            text, count = pattern.subn(replacement, text, count=1)
            if count:
                break
        for rule in self.universities:
            if (text.startswith(rule.short) and not text.startswith(rule.long)
                    and not _NOT_A_HOSPITAL_OF.match(text[len(rule.short):])
                    and rule.applies(division_code)):
                text = rule.long + text[len(rule.short):]
                break
        return self._named(text, division_code) or text

    def _named(self, text: str, division_code: str) -> str:
        for rule in self.names.get(text, ()):
            if rule.applies(division_code):
                return normalize_name(rule.long_in(division_code))
        return ""


def parse(text: str) -> list[Rule]:
    """The rules of a table's text; a bad line raises ``RuleError`` naming it."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        if len(cells) < 3 or not cells[1] or not cells[2]:
            raise RuleError(f"line {number}: give kind, short and long, tab-separated")
        kind, short, long = cells[:3]
        scope = cells[3] if len(cells) > 3 else ""
        if kind not in KINDS:
            raise RuleError(f"line {number}: kind {kind!r} is not one of {KINDS}")
        if scope and scope != "province" and not re.fullmatch(r"\d{2}|\d{4}", scope):
            raise RuleError(f"line {number}: scope {scope!r} is not a province or city prefix")
        if kind == "ordinal":
            try:
                re.compile(short.replace("N", _NUMERAL))
            except re.error as error:
                raise RuleError(f"line {number}: {error}") from None
        elif "{province}" in long and scope != "province":
            raise RuleError(f"line {number}: {{province}} needs the scope \"province\"")
        rules.append(Rule(kind, short, long, scope, number))
    return rules


@functools.cache
def rules() -> Rules:
    return Rules(parse(TABLE.read_text(encoding="utf-8")))


def canonical(normalized: str, division_code: str = "") -> str:
    return rules().canonical(normalized, division_code)
