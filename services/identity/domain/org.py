"""Org tree and dealer rules: tree shape (no cycles, a sub-dealer hangs under a platform
dealer), dealer field validation, derived tags. Pure Python, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.identity.domain.rules import OrgKind, Tier, credit_code_violations
from shared import divisions
from shared.errors import FieldViolation

TIER_LABELS = {Tier.PLATFORM: "平台商", Tier.ONE: "一级", Tier.TWO: "二级"}
STATUSES = ("active", "suspended", "closed")
TAG = re.compile(r"^[^\s,;|]{1,64}$")
PRODUCT_LINE = re.compile(r"^[^\s,;|]{1,64}$")


@dataclass(frozen=True)
class Node:
    """What the tree rules need to know about an org unit."""

    id: str
    kind: str
    parent_id: str | None = None
    tier: str = ""
    platform_dealer_id: str | None = None


def tree_violations(node: Node, units: Mapping[str, Node]) -> list[FieldViolation]:
    """Check a new or changed org unit against the rest of the tree (``units``, which may
    hold the old version of ``node``): the parent exists and has the right kind, following
    parents never comes back to the node, a sub-dealer's platform dealer is a platform
    dealer that is not itself a sub-dealer."""
    problems: list[FieldViolation] = []
    if node.kind == OrgKind.HQ:
        if node.parent_id:
            problems.append(FieldViolation("parent_id", "HQ has no parent"))
        return problems
    parent = units.get(node.parent_id or "")
    allowed = {OrgKind.REGION: (OrgKind.HQ, OrgKind.REGION), OrgKind.DEALER: (OrgKind.REGION,)}
    if parent is None:
        problems.append(FieldViolation("parent_id", "must name an existing org unit"))
    elif parent.kind not in allowed.get(node.kind, ()):
        problems.append(FieldViolation(
            "parent_id", f"a {node.kind} must belong to a {' or '.join(allowed[node.kind])},"
                         f" not a {parent.kind}"))
    else:
        seen = {node.id}
        current = parent
        while current is not None:
            if current.id in seen:
                problems.append(FieldViolation(
                    "parent_id", "would create a cycle in the org tree"))
                break
            seen.add(current.id)
            current = units.get(current.parent_id or "")
    if node.platform_dealer_id:
        platform = units.get(node.platform_dealer_id)
        if node.kind != OrgKind.DEALER:
            problems.append(FieldViolation("platform_dealer_id", "only dealers have one"))
        elif node.platform_dealer_id == node.id:
            problems.append(FieldViolation("platform_dealer_id",
                                           "a dealer cannot be its own platform dealer"))
        elif platform is None or platform.kind != OrgKind.DEALER:
            problems.append(FieldViolation("platform_dealer_id", "must name an existing dealer"))
        elif platform.tier != Tier.PLATFORM:
            problems.append(FieldViolation(
                "platform_dealer_id",
                "the parent of a sub-dealer must be a platform dealer (平台商)"))
        elif platform.platform_dealer_id:
            problems.append(FieldViolation(
                "platform_dealer_id", "a platform dealer cannot itself be a sub-dealer"))
        elif node.tier == Tier.PLATFORM:
            problems.append(FieldViolation("tier", "a sub-dealer cannot be a platform dealer"))
    if node.kind == OrgKind.DEALER and node.tier != Tier.PLATFORM:
        subs = [u for u in units.values() if u.platform_dealer_id == node.id and u.id != node.id]
        if subs:
            problems.append(FieldViolation(
                "tier", f"still the platform dealer of {len(subs)} sub-dealer(s)"))
    return problems


@dataclass(frozen=True)
class DealerFields:
    name: str
    credit_code: str
    tier: str
    division_codes: tuple[str, ...]
    product_lines: tuple[str, ...]
    city_code: str = ""
    status: str = "active"
    custom_tags: tuple[str, ...] = field(default_factory=tuple)


def division_violations(codes: Iterable[str], field_name: str = "division_codes"
                        ) -> list[FieldViolation]:
    problems = []
    codes = list(codes)
    if not codes:
        problems.append(FieldViolation(field_name, "at least one GB/T 2260 division code"))
    for index, code in enumerate(codes):
        if not divisions.is_known(code):
            problems.append(FieldViolation(
                f"{field_name}[{index}]", f"{code!r} is not a known GB/T 2260 division code"))
    return problems


def dealer_violations(fields: DealerFields) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    if not fields.name.strip():
        problems.append(FieldViolation("name", "is required"))
    elif len(fields.name) > 200:
        problems.append(FieldViolation("name", "at most 200 characters"))
    problems += credit_code_violations(fields.credit_code)
    if fields.tier not in {t.value for t in Tier}:
        problems.append(FieldViolation("tier", "must be platform, one or two"))
    problems += division_violations(fields.division_codes)
    if fields.city_code and not divisions.is_known(fields.city_code):
        problems.append(FieldViolation(
            "city_code", f"{fields.city_code!r} is not a known GB/T 2260 division code"))
    if not fields.product_lines:
        problems.append(FieldViolation("product_lines", "at least one is required"))
    for index, line in enumerate(fields.product_lines):
        if not PRODUCT_LINE.match(line):
            problems.append(FieldViolation(f"product_lines[{index}]",
                                           "1-64 characters without spaces or , ; |"))
    if fields.status not in STATUSES:
        problems.append(FieldViolation("status", f"must be one of {', '.join(STATUSES)}"))
    problems += tag_violations(fields.custom_tags, "custom_tags")
    return problems


def tag_violations(tags: Iterable[str], field_name: str = "tags") -> list[FieldViolation]:
    return [FieldViolation(f"{field_name}[{i}]", "1-64 characters without spaces or , ; |")
            for i, tag in enumerate(tags) if not TAG.match(tag)]


def subtree(root_id: str, parents: Mapping[str, str | None]) -> set[str]:
    """``root_id`` and every unit below it, given each unit's parent."""
    children: dict[str, list[str]] = {}
    for unit_id, parent_id in parents.items():
        children.setdefault(parent_id or "", []).append(unit_id)
    found: set[str] = set()
    stack = [root_id]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, []))
    return found


def home_city(division_codes: Iterable[str], city_code: str = "") -> str:
    """The city a dealer is based in: its own city code, else its first territory code's."""
    if city_code:
        return city_code
    for code in division_codes:
        return code
    return ""


def derived_tags(region_name: str, city_code: str, tier: str,
                 product_lines: Iterable[str]) -> list[str]:
    """One tag per product line: "<region>-<city>-<tier>-<product line>", e.g.
    "华东-上海-一级-A系列"."""
    city = divisions.city_name(city_code) if city_code else "未知"
    label = TIER_LABELS.get(Tier(tier), tier) if tier in {t.value for t in Tier} else tier
    return [f"{region_name}-{city}-{label}-{line}" for line in dict.fromkeys(product_lines)]
