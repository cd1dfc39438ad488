"""Rebate programs: created and versioned by HQ, their audience asked from identity
(QueryAudience) and kept current as dealers' tags and attributes change; and the
dealer's what-if."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from qudao.incentive.v1 import events_pb2

from services.incentive.domain.dealers import Dealer, in_audience
from services.incentive.domain.periods import Period
from services.incentive.domain.programs import Program, ProgramStatus, validate_program, version_for
from services.incentive.domain.tiers import Volume, WhatIf, what_if
from services.incentive.messages import audience_predicate, program_to_proto
from services.incentive.usecases.access import CONFIGURERS, require, scope_of
from services.incentive.usecases.engine import Booking
from services.incentive.usecases.ports import Audiences, IncentiveUnitOfWork, Policy
from shared.clock import Clock, today
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound
from shared.events.incentive import REBATE_PROGRAM_CREATED, REBATE_PROGRAM_UPDATED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of
from shared.scope import Scopes


async def _members(program: Program, audiences: Audiences) -> set[str]:
    members = await audiences.members(program.audience, program.product_lines)
    if not members:
        raise InvalidArgument.field("program.audience", "matches no active dealer: a "
                                                        "program needs an audience")
    return members


async def _book_periods(booking: Booking, program: Program, since: date) -> None:
    for period in program.periods():
        if period.start >= since and period.start <= today(booking.clock):
            await booking.recompute_rebate(program.id, period)


def _check_open(program: Program, from_day: date, closed: set[str], field: str) -> None:
    for period in program.periods():
        if period.end >= from_day and any(m in closed for m in period.months()):
            raise FailedPrecondition(
                f"{field}: {period.label} is already settled; a program changes only for "
                "periods not yet closed", reason="PERIOD_CLOSED")


async def create_program(program: Program, *, who: Principal, uow: IncentiveUnitOfWork,
                         audiences: Audiences, clock: Clock, ids: IdSource,
                         policy: Policy) -> tuple[Program, int]:
    require(who, CONFIGURERS, "creating rebate programs")
    program = replace(program, id=ids.new_id(), version=1, effective_from=program.start,
                      status=ProgramStatus.ACTIVE, created_at=clock.now(),
                      created_by=who.subject)
    validate_program(program)
    audience_predicate(program.audience)
    members = await _members(program, audiences)  # identity, outside the transaction
    async with uow:
        _check_open(program, program.start, await uow.settlements.closed_months(),
                    "program.period_start")
        await uow.programs.add_version(program)
        await uow.programs.add_members(program.id, members)
        uow.events.record(REBATE_PROGRAM_CREATED, events_pb2.RebateProgramCreated(
            program=program_to_proto(program, len(members))), program.id)
        await _book_periods(Booking(uow, clock, ids, policy, "rebate_program.created",
                                    program.id), program, program.start)
        await uow.commit()
    return program, len(members)


async def update_program(program_id: str, changed: Program, effective_from: date, *,
                         who: Principal, uow: IncentiveUnitOfWork, audiences: Audiences,
                         clock: Clock, ids: IdSource, policy: Policy) -> Program:
    """A new version from the start of one of the program's periods; the periods before
    keep the version they had."""
    require(who, CONFIGURERS, "changing rebate programs")
    async with uow.read():
        versions = await uow.programs.versions(program_id)
    if not versions:
        raise NotFound(f"rebate program {program_id} not found")
    latest = max(versions, key=lambda v: v.version)
    starts = [p.start for p in latest.periods()]
    if effective_from not in starts:
        raise InvalidArgument.field("effective_from", f"must start one of the program's "
                                    f"periods ({', '.join(str(s) for s in starts[:6])}…)")
    if effective_from <= max(v.effective_from for v in versions):
        raise InvalidArgument.field("effective_from", "must be after the latest version's "
                                    f"start ({latest.effective_from})")
    program = replace(changed, id=program_id, version=latest.version + 1,
                      effective_from=effective_from, start=latest.start, end=latest.end,
                      period_kind=latest.period_kind, status=ProgramStatus.ACTIVE,
                      created_at=clock.now(), created_by=who.subject)
    validate_program(program)
    audience_predicate(program.audience)
    members = await _members(program, audiences)
    async with uow:
        _check_open(program, effective_from, await uow.settlements.closed_months(),
                    "effective_from")
        if len(await uow.programs.versions(program_id)) != len(versions):
            raise FailedPrecondition("the program changed meanwhile; try again",
                                     reason="CONCURRENT_CHANGE")
        await uow.programs.add_version(program)
        before = await uow.programs.members(program_id)
        for dealer_id in sorted(before ^ members):
            await uow.programs.set_member(program_id, dealer_id, dealer_id in members)
        uow.events.record(REBATE_PROGRAM_UPDATED, events_pb2.RebateProgramUpdated(
            program=program_to_proto(program, len(members))), program_id)
        booking = Booking(uow, clock, ids, policy, "rebate_program.updated", program_id)
        await _book_periods(booking, program, min(p.start for p in program.periods()))
        await uow.commit()
    return program


async def reevaluate_dealer(dealer: Dealer, cause: str, *, uow: IncentiveUnitOfWork,
                            clock: Clock, ids: IdSource, policy: Policy) -> None:
    """A dealer's attributes or tags changed: it joins or leaves the audiences it now
    matches, and its rebates in open periods follow."""
    async with uow:
        known = await uow.dealers.get(dealer.id)
        if (known and known.updated_at and dealer.updated_at
                and known.updated_at > dealer.updated_at):
            return
        await uow.dealers.put(dealer)
        booking = Booking(uow, clock, ids, policy, cause, dealer.id)
        mine = await uow.programs.programs_of(dealer.id)
        closed = await uow.settlements.closed_months()
        for program_id, versions in sorted((await uow.programs.all()).items()):
            latest = max(versions, key=lambda v: v.version)
            if latest.status is not ProgramStatus.ACTIVE or latest.end < today(clock):
                continue
            member = in_audience(dealer, audience_predicate(latest.audience),
                                 latest.product_lines)
            if member == (program_id in mine):
                continue
            await uow.programs.set_member(program_id, dealer.id, member)
            for period in latest.periods():
                if period.start <= today(clock) and not any(m in closed for m in period.months()):
                    await booking.recompute_rebate(program_id, period, frozenset({dealer.id}))
        await uow.commit()


async def get_program(program_id: str, *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes) -> tuple[list[Program], int]:
    async with uow.read():
        versions = sorted(await uow.programs.versions(program_id), key=lambda v: v.version)
        members = await uow.programs.members(program_id) if versions else set()
    if not versions:
        raise NotFound(f"rebate program {program_id} not found")
    if not who.is_hq_wide and not who.has_role(*CONFIGURERS):
        scope = await scope_of(who, scopes)
        if not scope.all_dealers and not (members & scope.dealer_ids):
            raise NotFound(f"rebate program {program_id} not found")
    return versions, len(members)


@dataclass(frozen=True)
class ProgramFilter:
    product_line: str = ""
    status: str = ""
    active_on: date | None = None
    dealer_id: str = ""


async def list_programs(which: ProgramFilter, page: PageRequest, *, who: Principal,
                        uow: IncentiveUnitOfWork, scopes: Scopes) -> Page[tuple[Program, int]]:
    scope = await scope_of(who, scopes)
    async with uow.read():
        programs = await uow.programs.all()
        rows = []
        for program_id, versions in programs.items():
            latest = max(versions, key=lambda v: v.version)
            members = await uow.programs.members(program_id)
            if which.dealer_id and (which.dealer_id not in members
                                    or not scope.allows(which.dealer_id)):
                continue
            if not scope.all_dealers and not (members & scope.dealer_ids):
                continue
            if which.product_line and which.product_line not in latest.product_lines:
                continue
            if which.status and latest.status.value != which.status:
                continue
            if which.active_on and not latest.start <= which.active_on <= latest.end:
                continue
            rows.append((latest, len(members)))
    rows.sort(key=lambda item: (item[0].start, item[0].name, item[0].id), reverse=True)
    return page_of(rows[page.offset:page.offset + page.size + 1], page, len(rows))


@dataclass(frozen=True)
class WhatIfAnswer:
    program: Program
    period: Period
    answer: WhatIf


async def what_if_for(program_id: str, dealer_id: str, on: date | None, more_quantity: int,
                      more_amount: int | None, *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes, clock: Clock, ids: IdSource,
                      policy: Policy) -> WhatIfAnswer:
    """Where the dealer stands in a program now and what more sales would change:
    the tier reached, the rebate earned so far, how far the next tier is and what it
    pays."""
    if more_quantity < 0 or (more_amount or 0) < 0:
        raise InvalidArgument.field("additional_quantity", "must not be negative")
    scope = await scope_of(who, scopes)
    scope.require(dealer_id)
    async with uow.read():
        versions = await uow.programs.versions(program_id)
        if not versions or dealer_id not in await uow.programs.members(program_id):
            raise NotFound(f"rebate program {program_id} not found for dealer {dealer_id}")
        latest = max(versions, key=lambda v: v.version)
        day = on or today(clock)
        period = latest.period_of(day)
        if period is None:
            raise InvalidArgument.field("on", f"{day} is outside the program "
                                              f"({latest.start}..{latest.end})")
        version = version_for(versions, period)
        booking = Booking(uow, clock, ids, policy, "what_if", program_id)
        dealers = frozenset({dealer_id})
        volume = (await booking.volumes(version, period, dealers)).get(dealer_id)
        target = (await booking.targets(version, period, dealers)).get(dealer_id)
    answer = what_if(version.scheme, version.basis, volume or Volume(), target, more_quantity,
                     more_amount)
    return WhatIfAnswer(version, period, answer)
