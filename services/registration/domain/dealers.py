"""Dealers as identity defines them, as registration keeps them: a local projection of
identity's org units and manager assignments. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DealerFacts:
    """What an org-unit event (or identity's GetOrgUnit) says about a dealer."""

    id: str
    name: str
    tier: int  # platform 1, tier one 2, tier two 3
    region_code: str
    division_codes: tuple[str, ...]
    product_lines: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class Assignment:
    """A channel manager looks after a dealer for a product line."""

    manager_user_id: str
    dealer_id: str
    product_line: str


@dataclass(frozen=True)
class AssignmentChange:
    added: tuple[Assignment, ...] = ()
    removed: tuple[Assignment, ...] = ()
    # Set on a hand-over: the leaving manager's grants and pending approvals move.
    from_manager_user_id: str = ""
    to_manager_user_id: str = ""
