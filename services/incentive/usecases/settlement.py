"""Settlement: finance closes a period after the grace period for late data — the
rebates of program periods that become due are recomputed from the facts, every accrual
due is frozen into one statement per dealer (late data for periods closed earlier as
adjustments) — then approves it (another person than the one who closed), which credits
each positive statement to the dealer's account (RebateCredited) and carries a negative
one forward. A period is closed once (the database refuses a second close of any of its
months) and a settled statement never changes."""

from __future__ import annotations

from datetime import date, timedelta

from qudao.incentive.v1 import events_pb2

from services.incentive.domain.accruals import (
    Accrual,
    AccrualFilter,
    AccrualKind,
    Amounts,
    LineKey,
    UnitType,
)
from services.incentive.domain.periods import Period
from services.incentive.domain.programs import version_for
from services.incentive.domain.settlement import (
    Settlement,
    SettlementPeriod,
    SettlementStatus,
    classify,
    settlement_id,
    statement_lines,
    total_of,
)
from services.incentive.messages import settlement_period_to_proto
from services.incentive.usecases.access import SETTLERS, require, scope_of
from services.incentive.usecases.engine import Booking
from services.incentive.usecases.ports import IncentiveUnitOfWork, Policy
from services.incentive.usecases.rules import recompute_range
from shared.clock import Clock, today
from shared.context import Principal
from shared.convert import money_to_proto
from shared.errors import FailedPrecondition, NotFound, PermissionDenied
from shared.events.incentive import REBATE_CREDITED, SETTLEMENT_CLOSED, SETTLEMENT_POSTED
from shared.ids import IdSource
from shared.money import Money
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def _names(uow: IncentiveUnitOfWork) -> dict[str, str]:
    names = {rule.id: rule.name for rule in await uow.rules.all()}
    for program_id, versions in (await uow.programs.all()).items():
        names[program_id] = max(versions, key=lambda v: v.version).name
    names["default"] = "默认佣金 default commission"
    return names


async def _rebate_sources(booking: Booking, accruals: list[Accrual]
                         ) -> dict[str, dict[tuple[str, date], tuple[str, ...]]]:
    """Per dealer, what the volume of each of its rebate lines counts (see
    statement_lines), for the program periods these accruals belong to."""
    wanted: dict[tuple[str, date, date], set[str]] = {}
    for accrual in accruals:
        key = accrual.key
        if key.kind is AccrualKind.REBATE and not accrual.adjustment:
            wanted.setdefault((key.scheme_id, key.period_start, key.period_end),
                              set()).add(key.dealer_id)
    found: dict[str, dict[tuple[str, date], tuple[str, ...]]] = {}
    for (program_id, start, end), dealers in sorted(wanted.items()):
        period = Period.between(start, end)
        version = version_for(await booking.uow.programs.versions(program_id), period)
        if version is None:
            continue
        # Many dealers: the scan of the whole period the close made for the rebates.
        asked = frozenset(dealers) if len(dealers) <= 20 else None
        for dealer_id, sources in (await booking.rebate_sources(version, period,
                                                                asked)).items():
            if dealer_id in dealers:
                found.setdefault(dealer_id, {})[(program_id, start)] = sources
    return found


async def recompute_due_rebates(booking: Booking, closed_after: set[str]) -> None:
    """Rebates of every program period whose months are all closed, from the facts."""
    for program_id, versions in sorted((await booking.uow.programs.all()).items()):
        latest = max(versions, key=lambda v: v.version)
        for period in latest.periods():
            if set(period.months()) <= closed_after and version_for(versions, period):
                await booking.recompute_rebate(program_id, period)


async def close_period(period: Period, company: str, *, who: Principal,
                       uow: IncentiveUnitOfWork, clock: Clock, ids: IdSource,
                       policy: Policy) -> SettlementPeriod:
    require(who, SETTLERS, "closing a settlement period")
    company = company.strip() or policy.default_company
    opens = period.end + timedelta(days=policy.grace_days + 1)
    if today(clock) < opens:
        raise FailedPrecondition(
            f"{period.label} can be closed from {opens} on ({policy.grace_days} days of grace "
            "for late data after the period ends)", reason="GRACE_PERIOD")
    period_id = ids.new_id()
    async with uow:
        closed_before = await uow.settlements.closed_months(company)
        # Refused by the database for a month closed already, even by a concurrent close.
        await uow.settlements.close_months(company, period.months(), period_id)
        closed_after = closed_before | set(period.months())
        booking = Booking(uow, clock, ids, policy, "settlement.closed", period_id, memo=True)
        await recompute_due_rebates(booking, closed_after)
        groups: dict[str, list[tuple[date, date]]] = {"regular": [], "adjustment": []}
        for start, end in await uow.accruals.unfrozen_periods(company):
            kind = classify(start, end, period, closed_before)
            if kind:
                groups[kind].append((start, end))
        for kind, spans in groups.items():
            if spans:
                await uow.accruals.freeze(company, spans, period_id, kind == "adjustment")
        frozen = await uow.accruals.frozen(period_id)
        names = await _names(uow)
        sources = await _rebate_sources(booking, frozen)
        by_dealer: dict[str, list[Accrual]] = {}
        for accrual in frozen:
            by_dealer.setdefault(accrual.dealer_id, []).append(accrual)
        now = clock.now()
        settlements = []
        for dealer_id, accruals in sorted(by_dealer.items()):
            lines = statement_lines(accruals, names, sources.get(dealer_id))
            if not lines:
                continue
            settlements.append(Settlement(
                settlement_id(period_id, dealer_id), period_id, dealer_id, company, period,
                SettlementStatus.CLOSED, tuple(lines), total_of(lines), policy.currency, now))
        await uow.settlements.add_settlements(settlements)
        record = SettlementPeriod(period_id, company, period, SettlementStatus.CLOSED,
                                  len(settlements), sum(s.total_minor for s in settlements),
                                  policy.currency, now, who.subject)
        await uow.settlements.add_period(record)
        uow.events.record(SETTLEMENT_CLOSED, events_pb2.SettlementClosed(
            period=settlement_period_to_proto(record)), period_id)
        await uow.commit()
    return record


async def settle_period(period_id: str, *, who: Principal, uow: IncentiveUnitOfWork,
                        clock: Clock, ids: IdSource,
                        policy: Policy) -> tuple[SettlementPeriod, int]:
    """Approve a closed period: credit each positive statement once (RebateCredited,
    the statement id as the credit id), carry each negative one into the next
    settlement. Repeating it changes nothing."""
    require(who, SETTLERS, "approving a settlement")
    async with uow:
        record = await uow.settlements.get_period(period_id)
        if record is None:
            raise NotFound(f"settlement period {period_id} not found")
        if record.status is SettlementStatus.SETTLED:
            return record, 0
        if record.closed_by == who.subject:
            raise PermissionDenied("a settlement is approved by someone other than who "
                                   "closed it", reason="FOUR_EYES")
        now = clock.now()
        credited = 0
        carried: list[Accrual] = []
        for settlement in await uow.settlements.of_period(period_id):
            credit_id, carried_minor = "", 0
            if settlement.total_minor > 0:
                credit_id = settlement.id
                uow.events.record(REBATE_CREDITED, events_pb2.RebateCredited(
                    credit_id=credit_id, dealer_id=settlement.dealer_id,
                    selling_company=settlement.selling_company,
                    amount=money_to_proto(Money(settlement.total_minor, settlement.currency)),
                    settlement_id=settlement.id, settlement_period_id=period_id,
                    period_start=record.period.start.isoformat(),
                    period_end=record.period.end.isoformat(),
                    description=f"{record.period.label} 返利及佣金 rebates and commissions"),
                    settlement.dealer_id)
                credited += 1
            elif settlement.total_minor < 0:
                carried_minor = settlement.total_minor
                carried.append(Accrual(
                    ids.new_id(), LineKey(AccrualKind.CARRIED_FORWARD, settlement.dealer_id,
                                          settlement.selling_company, record.period.start,
                                          record.period.end, UnitType.SETTLEMENT,
                                          settlement.id, currency=settlement.currency),
                    Amounts(0, 0, carried_minor), "settlement.posted", settlement.id, now))
            await uow.settlements.put_settlement(Settlement(
                settlement.id, settlement.period_id, settlement.dealer_id,
                settlement.selling_company, settlement.period, SettlementStatus.SETTLED,
                settlement.lines, settlement.total_minor, settlement.currency,
                settlement.closed_at, now, credit_id, carried_minor))
        if carried:
            await Booking(uow, clock, ids, policy, "settlement.posted", period_id).book(
                {a.key: a.amounts for a in carried})
        record = SettlementPeriod(record.id, record.selling_company, record.period,
                                  SettlementStatus.SETTLED, record.dealer_count,
                                  record.total_minor, record.currency, record.closed_at,
                                  record.closed_by, now, who.subject)
        await uow.settlements.put_period(record)
        uow.events.record(SETTLEMENT_POSTED, events_pb2.SettlementPosted(
            period=settlement_period_to_proto(record)), period_id)
        await uow.commit()
    return record, credited


async def list_periods(company: str, page: PageRequest, *, who: Principal,
                       uow: IncentiveUnitOfWork) -> Page[SettlementPeriod]:
    """Settlement runs: a company's totals over all its dealers, for HQ's finance-wide
    roles (a dealer, a manager sees statements, /settlements, instead)."""
    if not who.is_hq_wide:
        raise PermissionDenied("settlement runs are for HQ admin, finance and customer "
                               "service")
    async with uow.read():
        return await uow.settlements.periods(company, page)


async def list_settlements(period_id: str, dealer_id: str, status: str, page: PageRequest, *,
                           who: Principal, uow: IncentiveUnitOfWork,
                           scopes: Scopes) -> Page[Settlement]:
    scope = await scope_of(who, scopes)
    if dealer_id and not scope.allows(dealer_id):
        return Page([])
    dealers = frozenset({dealer_id}) if dealer_id else (
        None if scope.all_dealers else scope.dealer_ids)
    async with uow.read():
        return await uow.settlements.page(period_id, dealers, status, page)


async def statement(settlement_id_: str, dealer_id: str, period: Period | None, *,
                    who: Principal, uow: IncentiveUnitOfWork, scopes: Scopes, clock: Clock,
                    ids: IdSource, policy: Policy) -> tuple[Settlement, bool]:
    """A settled or closed statement, or (for a period not closed yet) the provisional
    one from the accruals so far. Returns it and whether it is provisional."""
    scope = await scope_of(who, scopes)
    async with uow.read():
        if settlement_id_:
            found = await uow.settlements.get(settlement_id_)
            if found is None or not scope.allows(found.dealer_id):
                raise NotFound(f"settlement {settlement_id_} not found")
            return found, False
        scope.require(dealer_id)
        if period is None:
            raise NotFound("name a settlement, or a dealer and a period")
        found = await uow.settlements.find(dealer_id, period.start, period.end)
        if found is not None:
            return found, False
        accruals = await uow.accruals.matching(AccrualFilter(
            frozenset({dealer_id}), period_start=period.start, period_end=period.end))
        booking = Booking(uow, clock, ids, policy, "statement", dealer_id, memo=True)
        sources = await _rebate_sources(booking, accruals)
        lines = statement_lines(accruals, await _names(uow), sources.get(dealer_id))
    return Settlement("", "", dealer_id, policy.default_company, period,
                      SettlementStatus.CLOSED, tuple(lines), total_of(lines), policy.currency,
                      None), True


async def recompute_period(period: Period, *, who: Principal, uow: IncentiveUnitOfWork,
                           clock: Clock, ids: IdSource, policy: Policy) -> tuple[int, int]:
    """Recompute every accrual unit of a period from the facts and book what differs
    (nothing, when the incremental accruals are right). Returns (corrections, units)."""
    require(who, ("hq_admin",), "recomputing a period")
    async with uow:
        booking = Booking(uow, clock, ids, policy, "recompute", period.label)
        units = await recompute_range(booking, period.start, period.end)
        for program_id, versions in sorted((await uow.programs.all()).items()):
            latest = max(versions, key=lambda v: v.version)
            for instance in latest.periods():
                if instance.start <= period.end and instance.end >= period.start:
                    await booking.recompute_rebate(program_id, instance)
                    units += 1
        await uow.commit()
    return len(booking.booked), units
