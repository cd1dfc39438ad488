"""Commission rules: HQ creates or changes them; the commission of every sale and order
they cover that is not yet settled is recomputed at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from qudao.incentive.v1 import events_pb2

from services.incentive.domain.accruals import UnitType, flow_unit
from services.incentive.domain.commission import CommissionRule, validate_rule
from services.incentive.messages import rule_to_proto
from services.incentive.usecases.access import CONFIGURERS, require, scope_of
from services.incentive.usecases.engine import Booking
from services.incentive.usecases.ports import IncentiveUnitOfWork, Policy
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FailedPrecondition, NotFound
from shared.events.incentive import COMMISSION_RULE_UPSERTED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of
from shared.scope import Scopes


def _first_open_day(closed: set[str]) -> date | None:
    if not closed:
        return None
    year, month = map(int, max(closed).split("-"))
    return date(year + month // 12, month % 12 + 1, 1)


async def upsert_rule(rule: CommissionRule, *, who: Principal, uow: IncentiveUnitOfWork,
                      scopes: Scopes, clock: Clock, ids: IdSource,
                      policy: Policy) -> tuple[CommissionRule, bool]:
    """Create or replace a rule. A dealer an override names must be one the caller sees
    (NOT_FOUND otherwise, as anywhere); then only HQ admin may write."""
    scope = await scope_of(who, scopes)
    for override in rule.overrides:
        if override.dealer_id:
            scope.require(override.dealer_id)
    require(who, CONFIGURERS, "changing commission rules")
    async with uow:
        existing = await uow.rules.get(rule.id) if rule.id else None
        if rule.id and existing is None:
            raise NotFound(f"commission rule {rule.id} not found")
        rule = replace(rule, id=rule.id or ids.new_id(), updated_at=clock.now(),
                       updated_by=who.subject)
        others = [r for r in await uow.rules.all() if r.id != rule.id]
        validate_rule(rule, others)
        start = min(rule.valid_from, existing.valid_from) if existing else rule.valid_from
        end = max((r.valid_to or date.max) for r in (rule, existing) if r is not None)
        open_from = _first_open_day(await uow.settlements.closed_months())
        if open_from is not None and start < open_from:
            raise FailedPrecondition(
                f"rule.valid_from: {start} falls in a settled period; commission rules "
                f"change from {open_from} on", reason="PERIOD_CLOSED")
        await uow.rules.put(rule)
        uow.events.record(COMMISSION_RULE_UPSERTED, events_pb2.CommissionRuleUpserted(
            rule=rule_to_proto(rule)), rule.id)
        booking = Booking(uow, clock, ids, policy, "commission_rule.upserted", rule.id)
        await recompute_range(booking, start, min(end, date(9999, 12, 31)))
        await uow.commit()
    return rule, existing is None


async def recompute_range(booking: Booking, start: date, end: date) -> int:
    """Recompute the commission of every unit with facts dated start..end; returns how
    many units."""
    parts = await booking.uow.sales.parts_between(start, end)
    orders, returns = await booking.uow.orders.units_between(start, end)
    units = ([(UnitType.FLOW, flow_unit(u, p)) for u, p in parts]
             + [(UnitType.ORDER, o) for o in orders] + [(UnitType.RETURN, r) for r in returns])
    await booking.recompute_units(units)
    return len(units)


async def list_rules(product_line: str, active_on: date | None, page: PageRequest, *,
                     who: Principal, uow: IncentiveUnitOfWork,
                     scopes: Scopes) -> Page[CommissionRule]:
    """The rules (HQ's, the same for every dealer); an override for one dealer is a
    term negotiated with it, shown only to those who see that dealer."""
    scope = await scope_of(who, scopes)
    async with uow.read():
        rules = [replace(r, overrides=tuple(o for o in r.overrides
                                            if not o.dealer_id or scope.allows(o.dealer_id)))
                 for r in await uow.rules.all()]
    chosen = sorted((r for r in rules
                     if (not product_line or r.product_line == product_line)
                     and (active_on is None or r.valid_on(active_on))),
                    key=lambda r: (r.product_line, r.base.value, r.valid_from, r.id))
    return page_of(chosen[page.offset:page.offset + page.size + 1], page, len(chosen))

