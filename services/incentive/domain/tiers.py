"""Tier maths of rebate programs: which tier a dealer's volume reaches and what it pays,
retroactive (every unit at the reached tier) or marginal (each band at its own rate), with
fixed amounts, tiers as a share of target and a cap; and the what-if (how far the next
tier is, what it would pay). Exact integer and fraction arithmetic, rounded once, half
away from zero. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from shared.errors import FieldViolation

MAX_BPS = 10_000


class Mode(enum.StrEnum):
    RETROACTIVE = "retroactive"
    MARGINAL = "marginal"


class Basis(enum.StrEnum):
    """What reaches the tiers (and, for rates, what they are paid on: the amount)."""

    QUANTITY = "quantity"            # units of accepted sell-through
    AMOUNT = "amount"                # amount of accepted sell-through
    PURCHASE_AMOUNT = "purchase_amount"  # fully approved orders, less returns

    @property
    def counts_units(self) -> bool:
        return self is Basis.QUANTITY


class Threshold(enum.StrEnum):
    QUANTITY = "quantity"
    AMOUNT = "amount"
    TARGET_SHARE = "target_share"  # basis points of the dealer's target


@dataclass(frozen=True)
class Tier:
    # Units, minor units or basis points of target, by the scheme's threshold kind.
    threshold: int
    rate_bps: int = 0
    fixed_minor: int = 0


@dataclass(frozen=True)
class Scheme:
    mode: Mode
    threshold: Threshold
    tiers: tuple[Tier, ...]
    cap_minor: int | None = None


@dataclass(frozen=True)
class Volume:
    quantity: int = 0
    amount_minor: int = 0

    def __add__(self, other: Volume) -> Volume:
        return Volume(self.quantity + other.quantity, self.amount_minor + other.amount_minor)

    def measure(self, basis: Basis) -> int:
        return self.quantity if basis.counts_units else self.amount_minor


@dataclass(frozen=True)
class Outcome:
    tier: int            # 1-based; 0 when no tier is reached
    rebate_minor: int
    rate_bps: int        # effective: rebate / amount
    capped: bool = False


def validate_scheme(scheme: Scheme, basis: Basis, path: str = "program") -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    if not scheme.tiers:
        problems.append(FieldViolation(f"{path}.tiers", "at least one tier is required"))
    if basis.counts_units and scheme.threshold is Threshold.AMOUNT:
        problems.append(FieldViolation(f"{path}.tiers", "a quantity program's tiers start at "
                                                        "min_quantity, not min_amount"))
    if not basis.counts_units and scheme.threshold is Threshold.QUANTITY:
        problems.append(FieldViolation(f"{path}.tiers", "an amount program's tiers start at "
                                                        "min_amount, not min_quantity"))
    previous: int | None = None
    for index, tier in enumerate(scheme.tiers):
        where = f"{path}.tiers[{index}]"
        if tier.threshold < 0:
            problems.append(FieldViolation(where, "the threshold must not be negative"))
        if previous is not None and tier.threshold <= previous:
            problems.append(FieldViolation(
                where, f"threshold {tier.threshold} must be above the previous tier's "
                       f"({previous}): tiers are in ascending order and do not overlap"))
        previous = tier.threshold
        if not 0 <= tier.rate_bps <= MAX_BPS:
            problems.append(FieldViolation(f"{where}.rate_bps",
                                           f"must be 0..{MAX_BPS} basis points, got "
                                           f"{tier.rate_bps}"))
        if tier.fixed_minor < 0:
            problems.append(FieldViolation(f"{where}.fixed_amount", "must not be negative"))
        if tier.rate_bps and tier.fixed_minor:
            problems.append(FieldViolation(where, "pays a rate or a fixed amount, not both"))
        if not tier.rate_bps and not tier.fixed_minor:
            problems.append(FieldViolation(where, "pays nothing: give rate_bps or "
                                                  "fixed_amount"))
    if scheme.cap_minor is not None and scheme.cap_minor < 0:
        problems.append(FieldViolation(f"{path}.cap", "must not be negative"))
    return problems


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def _round(value: Fraction) -> int:
    """Half away from zero."""
    sign = -1 if value < 0 else 1
    value = abs(value)
    return sign * int(value + Fraction(1, 2))


def thresholds(scheme: Scheme, target: int | None) -> list[int] | None:
    """The tiers' thresholds in the measure's own unit; None when they are a share of a
    target the dealer does not have."""
    if scheme.threshold is not Threshold.TARGET_SHARE:
        return [tier.threshold for tier in scheme.tiers]
    if not target or target <= 0:
        return None
    return [_ceil(Fraction(target * tier.threshold, MAX_BPS)) for tier in scheme.tiers]


def evaluate(scheme: Scheme, basis: Basis, volume: Volume,
             target: int | None = None) -> Outcome:
    measure = volume.measure(basis)
    bounds = thresholds(scheme, target)
    if bounds is None or measure <= 0:
        return Outcome(0, 0, 0)
    reached = [index for index, bound in enumerate(bounds) if measure >= bound]
    if not reached:
        return Outcome(0, 0, 0)
    top = reached[-1]
    amount = Fraction(max(volume.amount_minor, 0))
    if scheme.mode is Mode.RETROACTIVE:
        tier = scheme.tiers[top]
        exact = Fraction(tier.fixed_minor) if tier.fixed_minor else amount * tier.rate_bps / MAX_BPS
    else:
        exact = Fraction(0)
        for index in reached:
            tier = scheme.tiers[index]
            upper = bounds[index + 1] if index + 1 < len(bounds) else None
            band = (min(measure, upper) if upper is not None else measure) - bounds[index]
            # The band's share of the paid amount: the band itself for an amount
            # measure, the band's units at the average price for a quantity measure.
            share = amount * band / measure
            exact += Fraction(tier.fixed_minor) + share * tier.rate_bps / MAX_BPS
    rebate = _round(exact)
    capped = scheme.cap_minor is not None and rebate > scheme.cap_minor
    if capped:
        rebate = scheme.cap_minor
    rate = _round(Fraction(rebate * MAX_BPS, volume.amount_minor)) if volume.amount_minor > 0 else 0
    return Outcome(top + 1, rebate, rate, capped)


@dataclass(frozen=True)
class WhatIf:
    current: Outcome
    current_volume: Volume
    projected: Outcome
    projected_volume: Volume
    # Distance from the projected volume to the next tier (0 at the top tier).
    to_next_quantity: int
    to_next_amount_minor: int
    next_rate_bps: int
    rebate_at_next_minor: int


def extend(volume: Volume, basis: Basis, more_quantity: int, more_amount: int | None) -> Volume:
    """The volume plus extra units (at the dealer's average price so far, unless an
    amount is given) or extra amount."""
    if more_amount is None:
        if volume.quantity > 0:
            more_amount = _round(Fraction(volume.amount_minor * more_quantity, volume.quantity))
        else:
            more_amount = 0
    return Volume(volume.quantity + more_quantity, volume.amount_minor + more_amount)


def what_if(scheme: Scheme, basis: Basis, volume: Volume, target: int | None,
            more_quantity: int = 0, more_amount: int | None = None) -> WhatIf:
    current = evaluate(scheme, basis, volume, target)
    projected_volume = extend(volume, basis, more_quantity, more_amount)
    projected = evaluate(scheme, basis, projected_volume, target)
    bounds = thresholds(scheme, target) or []
    measure = projected_volume.measure(basis)
    upcoming = [(index, bound) for index, bound in enumerate(bounds) if bound > measure]
    if not upcoming:
        return WhatIf(current, volume, projected, projected_volume, 0, 0, 0, 0)
    index, bound = upcoming[0]
    gap = bound - measure
    if basis.counts_units:
        at_next = extend(projected_volume, basis, gap, None)
        to_quantity, to_amount = gap, at_next.amount_minor - projected_volume.amount_minor
    else:
        at_next = Volume(projected_volume.quantity, bound)
        to_quantity, to_amount = 0, gap
    reached = evaluate(scheme, basis, at_next, target)
    tier = scheme.tiers[index]
    return WhatIf(current, volume, projected, projected_volume, to_quantity, to_amount,
                  tier.rate_bps, reached.rebate_minor)
