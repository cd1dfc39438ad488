"""The accrual engine every use case books through: compute the targets of the units an
event touched from the stored facts, compare them with what the ledger holds, and book
the difference (with an AccrualRecorded per entry). Nothing here depends on the order in
which facts arrived, so repeated and reordered events converge on the same ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from qudao.incentive.v1 import events_pb2

from services.incentive.domain.accruals import (
    Accrual,
    Lines,
    UnitType,
    differences,
    flow_unit,
    rebate_unit,
)
from services.incentive.domain.commission import CommissionRule
from services.incentive.domain.compute import (
    Rules,
    flow_commission,
    order_commission,
    rebate_lines,
    return_commission,
)
from services.incentive.domain.facts import PricedReturnLine, Return, value_return
from services.incentive.domain.periods import Period
from services.incentive.domain.programs import Program, version_for
from services.incentive.domain.targets import TargetMeasure
from services.incentive.domain.tiers import Basis, Volume
from services.incentive.messages import accrual_to_proto
from services.incentive.usecases.ports import IncentiveUnitOfWork, Policy
from shared.clock import Clock
from shared.events.incentive import ACCRUAL_RECORDED
from shared.ids import IdSource


@dataclass
class Booking:
    """One transaction's bookings: why (the event or action) and with what."""

    uow: IncentiveUnitOfWork
    clock: Clock
    ids: IdSource
    policy: Policy
    cause: str
    cause_id: str
    booked: list[Accrual] = field(default_factory=list)
    # Keep what programs count for the whole booking: only where no fact changes in it
    # (a close, a statement).
    memo: bool = False
    _rules: Rules | None = None
    _counted: dict = field(default_factory=dict)

    async def rules(self) -> Rules:
        if self._rules is None:
            default = (CommissionRule(id="default", name="default rate",
                                      base_rate_bps=self.policy.default_rate_bps)
                       if self.policy.default_rate_bps > 0 else None)
            self._rules = Rules(tuple(await self.uow.rules.all()), default)
        return self._rules

    async def book(self, delta: Lines) -> list[Accrual]:
        now = self.clock.now()
        rows = [Accrual(self.ids.new_id(), key, amounts, self.cause, self.cause_id, now)
                for key, amounts in delta.items()]
        if rows:
            await self.uow.accruals.add_all(rows)
            for row in rows:
                self.uow.events.record(ACCRUAL_RECORDED, events_pb2.AccrualRecorded(
                    accrual=accrual_to_proto(row)), row.id)
            self.booked += rows
        return rows

    # ------------------------------------------------------------------ commission units
    async def flow_target(self, upload_id: str, part_index: int) -> Lines:
        rows = await self.uow.sales.rows_of(upload_id, part_index)
        if not rows:
            return {}
        superseded = await self.uow.sales.is_superseded(upload_id)
        diversions = await self.uow.sales.diversions_of(frozenset(r.dealer_id for r in rows))
        spans = []
        for dealer_id in sorted({row.dealer_id for row in rows}):
            spans += await self.uow.ownership.spans(
                dealer_id, {r.customer_id for r in rows if r.dealer_id == dealer_id})
        return flow_commission(upload_id, part_index, rows, superseded, diversions, spans,
                               await self.rules(), self.policy.default_company)

    async def order_target(self, order_id: str) -> Lines:
        order = await self.uow.orders.get(order_id)
        return order_commission(order, await self.rules()) if order else {}

    async def return_target(self, return_id: str) -> Lines:
        returned = await self.uow.orders.get_return(return_id)
        if returned is None:
            return {}
        return return_commission(returned, await self.price_return(returned),
                                 await self.rules())

    async def recompute_units(self, units: Iterable[tuple[UnitType, str]]) -> list[Accrual]:
        by_type: dict[UnitType, list[str]] = {}
        for unit_type, unit_id in units:
            if unit_id not in by_type.setdefault(unit_type, []):
                by_type[unit_type].append(unit_id)
        booked: list[Accrual] = []
        for unit_type, unit_ids in by_type.items():
            held = await self.uow.accruals.booked(unit_type, unit_ids)
            for unit_id in unit_ids:
                if unit_type is UnitType.FLOW:
                    upload_id, _, part = unit_id.rpartition("#")
                    target = await self.flow_target(upload_id, int(part))
                elif unit_type is UnitType.ORDER:
                    target = await self.order_target(unit_id)
                else:
                    target = await self.return_target(unit_id)
                booked += await self.book(differences(target, held.get(unit_id, {})))
        return booked

    async def recompute_parts(self, parts: Iterable[tuple[str, int]]) -> list[Accrual]:
        return await self.recompute_units((UnitType.FLOW, flow_unit(u, p)) for u, p in parts)

    async def price_return(self, returned: Return) -> list[PricedReturnLine]:
        priced = []
        dealer_orders: list | None = None
        for line in returned.lines:
            shipped = (await self.uow.orders.shipped_lines(line.shipment_id)
                       if line.shipment_id else [])
            orders = {}
            for order_id in {s.order_id for s in shipped if s.order_id}:
                order = await self.uow.orders.get(order_id)
                if order is not None:
                    orders[order_id] = order
            if dealer_orders is None:
                dealer_orders = await self.uow.orders.of_dealer(returned.dealer_id)
            priced.append(value_return(line, shipped, orders, dealer_orders,
                                       await self.uow.orders.product(line.product_code)))
        return priced

    # ------------------------------------------------------------------------- rebates
    async def counted(self, program: Program, period: Period,
                      dealer_ids: frozenset[str] | None) -> dict[str, dict[str, Volume]]:
        """Per dealer, what a program counts in a period, by source: the flow upload parts
        (accepted sell-through), or (purchases) the orders less the returns."""
        key = (program.id, program.version, period, dealer_ids)
        if self.memo and key in self._counted:
            return self._counted[key]
        if program.basis is not Basis.PURCHASE_AMOUNT:
            found = await self.uow.sales.counted(dealer_ids, program.product_lines,
                                                 program.product_codes, period.start,
                                                 period.end, program.currency)
        else:
            found = await self._purchases(program, period, dealer_ids)
        if self.memo:
            self._counted[key] = found
        return found

    async def _purchases(self, program: Program, period: Period,
                         dealer_ids: frozenset[str] | None) -> dict[str, dict[str, Volume]]:
        found: dict[str, dict[str, Volume]] = {}

        def add(dealer_id: str, unit: str, volume: Volume) -> None:
            units = found.setdefault(dealer_id, {})
            units[unit] = units.get(unit, Volume()) + volume

        for order in await self.uow.orders.counted(dealer_ids, period.start, period.end):
            for line in order.lines:
                if order.currency == program.currency and program.measures(
                        line.product_line, line.product_code):
                    add(order.dealer_id, f"{UnitType.ORDER.value}:{order.order_id}",
                        Volume(line.counted_quantity, line.counted_amount))
        for returned in await self.uow.orders.returns(dealer_ids, period.start, period.end):
            for line in await self.price_return(returned):
                if returned.currency == program.currency and program.measures(
                        line.product_line, line.line.product_code):
                    add(returned.dealer_id, f"{UnitType.RETURN.value}:{returned.return_id}",
                        Volume(-line.line.quantity, -line.amount_minor))
        return found

    async def volumes(self, program: Program, period: Period,
                      dealer_ids: frozenset[str] | None) -> dict[str, Volume]:
        return {dealer: sum(units.values(), Volume())
                for dealer, units in (await self.counted(program, period, dealer_ids)).items()}

    async def rebate_sources(self, program: Program, period: Period,
                             dealer_ids: frozenset[str] | None) -> dict[str, tuple[str, ...]]:
        """Per dealer, what its volume in a program period counts."""
        return {dealer: tuple(units)
                for dealer, units in (await self.counted(program, period, dealer_ids)).items()}

    async def targets(self, program: Program, period: Period,
                      dealer_ids: frozenset[str] | None) -> dict[str, int]:
        if not program.uses_target:
            return {}
        measure = TargetMeasure.for_basis(program.basis)
        sums: dict[str, int] = {}
        for target in await self.uow.targets.of(dealer_ids, period):
            if target.measure is measure and target.product_line in program.product_lines:
                sums[target.dealer_id] = sums.get(target.dealer_id, 0) + target.value
        return sums

    async def rebate_target(self, program: Program, period: Period,
                            dealer_ids: frozenset[str] | None) -> Lines:
        members = await self.uow.programs.members(program.id)
        if dealer_ids is not None:
            members &= dealer_ids
        lines: Lines = {}
        if not members:
            return lines
        scope = frozenset(members) if dealer_ids is not None else None
        volumes = await self.volumes(program, period, scope)
        targets = await self.targets(program, period, scope)
        for dealer_id in sorted(members):
            lines.update(rebate_lines(program, dealer_id, period,
                                      volumes.get(dealer_id, Volume()),
                                      targets.get(dealer_id), self.policy.default_company))
        return lines

    async def recompute_rebate(self, program_id: str, period: Period,
                               dealer_ids: frozenset[str] | None = None) -> list[Accrual]:
        """One program period, for some dealers or (None) all: members get their rebate,
        former members lose what they had."""
        versions = await self.uow.programs.versions(program_id)
        version = version_for(versions, period)
        target = await self.rebate_target(version, period, dealer_ids) if version else {}
        if dealer_ids is None:
            held = await self.uow.accruals.booked_rebates(program_id, period.start)
        else:
            held = {}
            for lines in (await self.uow.accruals.booked(
                    UnitType.REBATE, [rebate_unit(program_id, d, period.start)
                                      for d in sorted(dealer_ids)])).values():
                held.update(lines)
        return await self.book(differences(target, held))

    async def recompute_dealer_rebates(self, dealer_id: str,
                                       touched: Iterable[tuple[str, str, date]],
                                       purchases: bool = False) -> list[Accrual]:
        """A dealer's rebates in every program and period its changed facts fall in:
        ``touched`` are (product line, product code, day)."""
        touched = list(touched)
        if not touched:
            return []
        booked: list[Accrual] = []
        for program_id in sorted(await self.uow.programs.programs_of(dealer_id)):
            versions = await self.uow.programs.versions(program_id)
            latest = max(versions, key=lambda v: v.version)
            periods = set()
            for product_line, product_code, day in touched:
                period = latest.period_of(day)
                if period is None:
                    continue
                version = version_for(versions, period)
                if version is None or (version.basis is Basis.PURCHASE_AMOUNT) != purchases:
                    continue
                if version.measures(product_line, product_code):
                    periods.add(period)
            for period in sorted(periods):
                booked += await self.recompute_rebate(program_id, period, frozenset({dealer_id}))
        return booked
