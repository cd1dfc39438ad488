"""Targets (指标): HQ sets them by hand or imports a file (all or nothing, every failing
row reported); achievement is computed from the same facts as rebates; rebates whose
tiers are a share of target follow a changed target."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.incentive.domain.periods import Period
from services.incentive.domain.programs import Program, version_for
from services.incentive.domain.targets import (
    COLUMNS,
    RowProblem,
    Target,
    parse_row,
    share_bps,
)
from services.incentive.domain.tiers import Mode, Scheme, Threshold
from services.incentive.usecases.access import CONFIGURERS, require, scope_of, visible
from services.incentive.usecases.engine import Booking
from services.incentive.usecases.ports import IncentiveUnitOfWork, Policy
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument
from shared.ids import IdSource
from shared.scope import Scopes
from shared.tabular import Table


def _check(target: Target, index: int) -> None:
    if target.value < 0:
        raise InvalidArgument.field(f"targets[{index}].value", "must not be negative")
    if not target.dealer_id or not target.product_line:
        raise InvalidArgument.field(f"targets[{index}]", "dealer_id and product_line are "
                                                         "required")


async def _store(targets: list[Target], *, who: Principal, uow: IncentiveUnitOfWork,
                 clock: Clock, ids: IdSource, policy: Policy) -> tuple[int, int]:
    created = updated = 0
    closed = await uow.settlements.closed_months()
    for index, target in enumerate(targets):
        if any(m in closed for m in target.period.months()):
            raise FailedPrecondition(f"targets[{index}].period: {target.period.label} is "
                                     "already settled", reason="PERIOD_CLOSED")
        if await uow.dealers.get(target.dealer_id) is None:
            raise InvalidArgument.field(f"targets[{index}].dealer_id",
                                        f"unknown dealer {target.dealer_id}")
        if await uow.targets.put(replace(target, updated_at=clock.now(),
                                         updated_by=who.subject)):
            created += 1
        else:
            updated += 1
    booking = Booking(uow, clock, ids, policy, "targets.set", who.subject)
    for program_id, versions in sorted((await uow.programs.all()).items()):
        latest = max(versions, key=lambda v: v.version)
        for target in targets:
            for period in latest.periods():
                version = version_for(versions, period)
                if (version and version.uses_target and period.start >= target.period.start
                        and period.end <= target.period.end
                        and target.product_line in version.product_lines):
                    await booking.recompute_rebate(program_id, period,
                                                   frozenset({target.dealer_id}))
    return created, updated


async def set_targets(targets: list[Target], *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes, clock: Clock, ids: IdSource,
                      policy: Policy) -> tuple[int, int]:
    """HQ admin sets targets; a dealer the caller does not see answers NOT_FOUND first."""
    scope = await scope_of(who, scopes)
    for target in targets:
        scope.require(target.dealer_id)
    require(who, CONFIGURERS, "setting targets")
    for index, target in enumerate(targets):
        _check(target, index)
    async with uow:
        counts = await _store(targets, who=who, uow=uow, clock=clock, ids=ids, policy=policy)
        await uow.commit()
    return counts


@dataclass(frozen=True)
class ImportOutcome:
    created: int
    updated: int
    rows: int
    problems: list[tuple[int, RowProblem]]


def _in_file(problem: RowProblem, columns: dict[str, str | None]) -> RowProblem:
    """The problem named by the column header the file has (e.g. 经销商)."""
    return replace(problem, column=columns.get(problem.column) or problem.column)


async def import_targets(table: Table, dry_run: bool, *, who: Principal,
                         uow: IncentiveUnitOfWork, clock: Clock, ids: IdSource,
                         policy: Policy) -> ImportOutcome:
    require(who, CONFIGURERS, "importing targets")
    columns = {field: table.column(*names) for field, names in COLUMNS.items()}
    missing = [names[0] for field, names in COLUMNS.items()
               if columns[field] is None and field != "measure"]
    if missing:
        raise InvalidArgument.field("content", f"missing column(s): {', '.join(missing)}")
    problems: list[tuple[int, RowProblem]] = []
    targets: list[Target] = []
    seen: dict[tuple, int] = {}
    async with uow:
        closed = await uow.settlements.closed_months()
        for number, cells in table.rows:
            parsed, row_problems = parse_row({field: cells.get(column, "") for field, column
                                              in columns.items() if column})
            dealer = None
            if parsed["dealer"]:
                dealer = (await uow.dealers.get(parsed["dealer"])
                          or await uow.dealers.by_credit_code(parsed["dealer"].upper()))
                if dealer is None:
                    row_problems.append(RowProblem("dealer", "UNKNOWN_DEALER",
                                                   "经销商不存在", "unknown dealer",
                                                   parsed["dealer"]))
            if "period" in parsed and any(m in closed for m in parsed["period"].months()):
                row_problems.append(RowProblem("period", "PERIOD_CLOSED", "该期间已结算",
                                               "the period is already settled",
                                               parsed["period"].label))
            if row_problems:
                problems += [(number, _in_file(p, columns)) for p in row_problems]
                continue
            target = Target(dealer.id, parsed["product_line"], parsed["period"],
                            parsed["measure"], parsed["value"], policy.currency)
            if target.key in seen:
                problems.append((number, _in_file(RowProblem(
                    "dealer", "DUPLICATE_ROW", f"与第 {seen[target.key]} 行重复",
                    f"repeats row {seen[target.key]}"), columns)))
                continue
            seen[target.key] = number
            targets.append(target)
        if problems or dry_run:
            return ImportOutcome(0, 0, len(table.rows), problems)
        created, updated = await _store(targets, who=who, uow=uow, clock=clock, ids=ids,
                                        policy=policy)
        await uow.commit()
    return ImportOutcome(created, updated, len(table.rows), [])


async def list_targets(dealer_id: str, product_line: str, period: Period | None, *,
                       who: Principal, uow: IncentiveUnitOfWork, scopes: Scopes) -> list[Target]:
    dealers = visible(await scope_of(who, scopes), dealer_id)
    if dealers is not None and not dealers:
        return []
    async with uow.read():
        return await uow.targets.of(dealers, period, product_line)


@dataclass(frozen=True)
class Achievement:
    target: Target
    actual: int
    share_bps: int
    remaining: int


async def achievement(dealer_id: str, period: Period, *, who: Principal,
                      uow: IncentiveUnitOfWork, scopes: Scopes, clock: Clock, ids: IdSource,
                      policy: Policy) -> list[Achievement]:
    """Each target of the dealer in the period, with what it reached: accepted
    sell-through or purchases, exactly as rebates count them."""
    (await scope_of(who, scopes)).require(dealer_id)
    found = []
    async with uow.read():
        booking = Booking(uow, clock, ids, policy, "achievement", dealer_id)
        dealers = frozenset({dealer_id})
        for target in await uow.targets.of(dealers, None):
            if not (period.start <= target.period.start and target.period.end <= period.end):
                continue
            probe = Program("", 0, "", (target.product_line,), (), target.period.kind,
                            target.period.start, target.period.end, target.period.start,
                            target.measure.basis, Scheme(Mode.RETROACTIVE, Threshold.AMOUNT, ()),
                            currency=target.currency)
            volume = (await booking.volumes(probe, target.period, dealers)).get(dealer_id)
            actual = volume.measure(target.measure.basis) if volume else 0
            found.append(Achievement(target, actual, share_bps(actual, target.value),
                                     max(target.value - actual, 0)))
    return sorted(found, key=lambda a: (a.target.period.start, a.target.product_line,
                                        a.target.measure.value))

