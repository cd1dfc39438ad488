"""Rebate programs: what is measured (product lines or a product set; accepted
sell-through units or amount, or purchases), over which periods, with which tiers, for
which dealers (an audience by tag expression), in versions: editing a running program
creates a new version from the start of a period. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from services.incentive.domain.periods import Period, PeriodKind, instances
from services.incentive.domain.tiers import Basis, Scheme, Threshold, validate_scheme
from shared.errors import FieldViolation, collect


class ProgramStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass(frozen=True)
class Program:
    """One version of a program."""

    id: str
    version: int
    name: str
    product_lines: tuple[str, ...]
    product_codes: tuple[str, ...]
    period_kind: PeriodKind
    start: date
    end: date
    effective_from: date
    basis: Basis
    scheme: Scheme
    currency: str = "CNY"
    selling_company: str = ""
    description: str = ""
    # The audience expression as identity's AudienceExpression bytes (empty: every
    # dealer carrying one of the product lines).
    audience: bytes = b""
    status: ProgramStatus = ProgramStatus.ACTIVE
    created_at: datetime | None = None
    created_by: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def measures(self, product_line: str, product_code: str) -> bool:
        return (product_code in self.product_codes if self.product_codes
                else product_line in self.product_lines)

    def periods(self) -> list[Period]:
        return instances(self.period_kind, self.start, self.end)

    def period_of(self, day: date) -> Period | None:
        if not self.start <= day <= self.end:
            return None
        return Period.of(self.period_kind, day)

    @property
    def uses_target(self) -> bool:
        return self.scheme.threshold is Threshold.TARGET_SHARE


def validate_program(program: Program, path: str = "program") -> None:
    problems: list[FieldViolation] = []
    if not program.name.strip():
        problems.append(FieldViolation(f"{path}.name", "is required"))
    if not program.product_lines and not program.product_codes:
        problems.append(FieldViolation(f"{path}.product_lines",
                                       "name at least one product line or product code"))
    if program.end < program.start:
        problems.append(FieldViolation(f"{path}.period_end", "is before period_start"))
    else:
        first = Period.of(program.period_kind, program.start)
        last = Period.of(program.period_kind, program.end)
        if first.start != program.start:
            problems.append(FieldViolation(
                f"{path}.period_start", f"must start a {program.period_kind.value} "
                                        f"(e.g. {first.start})"))
        if last.end != program.end:
            problems.append(FieldViolation(
                f"{path}.period_end", f"must end a {program.period_kind.value} "
                                      f"(e.g. {last.end})"))
    if len(program.currency) != 3:
        problems.append(FieldViolation(f"{path}.currency", "must be an ISO 4217 code"))
    problems += validate_scheme(program.scheme, program.basis, path)
    collect(problems)


def version_for(versions: list[Program], period: Period) -> Program | None:
    """The version in force for a period: the latest one effective by its start."""
    candidates = [v for v in versions if v.effective_from <= period.start]
    return max(candidates, key=lambda v: v.version) if candidates else None
