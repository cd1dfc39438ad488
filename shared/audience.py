"""Audience expressions: AND / OR / NOT over tags, regions, tiers, product lines and
territory, evaluated against a dealer's attributes. Pure Python, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared import divisions
from shared.errors import FieldViolation, InvalidArgument

MAX_DEPTH = 16
MAX_TERMS = 200


@dataclass(frozen=True)
class DealerFacts:
    id: str
    region_code: str
    tier: str
    product_lines: frozenset[str]
    division_codes: tuple[str, ...]
    tags: frozenset[str]


Predicate = Callable[[DealerFacts], bool]


def term(kind: str, value: str, path: str) -> Predicate:
    if not value:
        raise InvalidArgument.field(path, "is empty")
    match kind:
        case "tag":
            return lambda d: value in d.tags
        case "tag_prefix":
            return lambda d: any(t.startswith(value) for t in d.tags)
        case "region_code":
            return lambda d: d.region_code == value
        case "tier":
            return lambda d: d.tier == value
        case "product_line":
            return lambda d: value in d.product_lines
        case "division_code":
            if not divisions.is_known(value):
                raise InvalidArgument.field(path, f"{value!r} is not a known GB/T 2260 code")
            return lambda d: any(divisions.contains(t, value) or divisions.contains(value, t)
                                 for t in d.division_codes)
    raise InvalidArgument.field(path, f"unknown term {kind!r}")


@dataclass(frozen=True)
class Node:
    """A parsed expression: op is "term", "all", "any" or "not"."""

    op: str
    children: tuple[Node, ...] = ()
    kind: str = ""
    value: str = ""


def count_part(path: str, depth: int, counter: list[int]) -> None:
    """Count one more part of an expression at ``depth``; refuse one too deep or too
    large (the gateway checks the same before the tree is sent on)."""
    counter[0] += 1
    if depth > MAX_DEPTH:
        raise InvalidArgument.field(path, f"nested deeper than {MAX_DEPTH}")
    if counter[0] > MAX_TERMS:
        raise InvalidArgument.field(path, f"more than {MAX_TERMS} parts")


def compile_expression(node: Node, path: str = "expression", depth: int = 0,
                       counter: list[int] | None = None) -> Predicate:
    counter = counter if counter is not None else [0]
    count_part(path, depth, counter)
    match node.op:
        case "term":
            return term(node.kind, node.value, f"{path}.term.{node.kind}")
        case "all" | "any":
            name = "all_of" if node.op == "all" else "any_of"
            if not node.children:
                raise InvalidArgument.field(f"{path}.{name}", "needs at least one expression")
            parts = [compile_expression(c, f"{path}.{name}[{i}]", depth + 1, counter)
                     for i, c in enumerate(node.children)]
            if node.op == "all":
                return lambda d: all(p(d) for p in parts)
            return lambda d: any(p(d) for p in parts)
        case "not":
            if len(node.children) != 1:
                raise InvalidArgument.field(f"{path}.negate", "needs one expression")
            inner = compile_expression(node.children[0], f"{path}.negate", depth + 1, counter)
            return lambda d: not inner(d)
    raise InvalidArgument(f"{path}: is empty",
                          violations=[FieldViolation(path, "an expression is required")])
