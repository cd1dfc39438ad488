"""In-memory incentive repositories and unit of work for the service-layer tests: the
same contracts as adapters/repositories.py, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from services.incentive.domain.accruals import (
    Accrual,
    AccrualFilter,
    Lines,
    UnitType,
    add_to,
)
from services.incentive.domain.commission import CommissionRule
from services.incentive.domain.dealers import Dealer
from services.incentive.domain.facts import (
    Diversion,
    LeadEvent,
    Order,
    Ownership,
    Registration,
    Return,
    Sale,
    ShippedLine,
    UploadPart,
    counts,
    lead_spans,
)
from services.incentive.domain.periods import Period, month_of
from services.incentive.domain.programs import Program
from services.incentive.domain.settlement import Settlement, SettlementPeriod
from services.incentive.domain.targets import Target
from services.incentive.domain.tiers import Volume
from services.incentive.usecases.ports import Deps, Policy
from shared.errors import AlreadyExists
from shared.pagination import Page, PageRequest, page_of
from shared.testing import FakeClock, FakeScopes, FakeUnitOfWork, SequentialIds


def _page(items: list, page: PageRequest) -> Page:
    return page_of(items[page.offset:page.offset + page.size + 1], page, len(items))


@dataclass
class FakeSales:
    parts: dict[tuple[str, int], UploadPart] = field(default_factory=dict)
    rows: dict[tuple[str, int], list[Sale]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)
    diversions: dict[str, Diversion] = field(default_factory=dict)

    async def add_part(self, part, rows):
        key = (part.upload_id, part.part_index)
        if key in self.parts:
            return False
        self.parts[key] = part
        self.rows[key] = list(rows)
        return True

    async def rows_of(self, upload_id, part_index):
        return list(self.rows.get((upload_id, part_index), []))

    async def parts_of(self, upload_id):
        return [p for k, p in sorted(self.parts.items()) if k[0] == upload_id]

    async def supersede(self, upload_id, by_upload_id):
        if upload_id in self.superseded:
            return False
        self.superseded[upload_id] = by_upload_id
        return True

    async def is_superseded(self, upload_id):
        return upload_id in self.superseded

    async def put_diversion(self, diversion):
        self.diversions[diversion.id] = diversion

    async def diversion(self, diversion_id):
        return self.diversions.get(diversion_id)

    async def diversions_of(self, dealer_ids):
        return [d for d in self.diversions.values() if d.dealer_id in dealer_ids]

    async def parts_with_batch(self, dealer_id, batch):
        return sorted(k for k, rows in self.rows.items()
                      if any(r.dealer_id == dealer_id and r.batch == batch for r in rows))

    async def parts_selling(self, dealer_id, customer_id, since):
        return sorted(k for k, rows in self.rows.items()
                      if any(r.dealer_id == dealer_id and r.customer_id == customer_id
                             and r.sold_on >= since for r in rows))

    async def parts_between(self, start, end):
        return sorted(k for k, rows in self.rows.items()
                      if any(start <= r.sold_on <= end for r in rows))

    def _counted(self, dealer_ids, product_lines, product_codes, start, end, currency):
        diversions = list(self.diversions.values())
        for (upload_id, _), rows in sorted(self.rows.items()):
            superseded = upload_id in self.superseded
            for row in rows:
                if dealer_ids is not None and row.dealer_id not in dealer_ids:
                    continue
                if not start <= row.sold_on <= end or row.currency != currency:
                    continue
                measured = (row.product_code in product_codes if product_codes
                            else row.product_line in product_lines)
                if measured and counts(row, superseded, diversions):
                    yield row

    async def counted(self, dealer_ids, product_lines, product_codes, start, end, currency):
        found: dict[str, dict[str, Volume]] = {}
        for row in self._counted(dealer_ids, product_lines, product_codes, start, end,
                                 currency):
            units = found.setdefault(row.dealer_id, {})
            unit = f"flow_upload:{row.upload_id}#{row.part_index}"
            units[unit] = units.get(unit, Volume()) + Volume(row.quantity, row.amount_minor)
        return found


@dataclass
class FakeOrders:
    orders: dict[str, Order] = field(default_factory=dict)
    returns_: dict[str, Return] = field(default_factory=dict)
    links: dict[tuple[str, int], ShippedLine] = field(default_factory=dict)
    products: dict[str, tuple[str, int]] = field(default_factory=dict)

    async def get(self, order_id):
        return self.orders.get(order_id)

    async def put(self, order):
        self.orders[order.order_id] = order

    async def counted(self, dealer_ids, start, end):
        return [o for o in self.orders.values() if o.counts and start <= o.approved_on <= end
                and (dealer_ids is None or o.dealer_id in dealer_ids)]

    async def of_dealer(self, dealer_id):
        return [o for o in self.orders.values() if o.dealer_id == dealer_id]

    async def get_return(self, return_id):
        return self.returns_.get(return_id)

    async def put_return(self, returned):
        self.returns_[returned.return_id] = returned

    async def returns(self, dealer_ids, start, end):
        return [r for r in self.returns_.values() if start <= r.received_on <= end
                and (dealer_ids is None or r.dealer_id in dealer_ids)]

    async def link_shipment(self, lines):
        for line in lines:
            self.links[(line.shipment_id, line.line_no)] = line

    async def shipped_lines(self, shipment_id):
        return [line for key, line in sorted(self.links.items()) if key[0] == shipment_id]

    async def put_product(self, code, product_line, list_price_minor):
        self.products[code] = (product_line, list_price_minor)

    async def product(self, code):
        return self.products.get(code)

    async def units_between(self, start, end):
        orders = sorted(o.order_id for o in self.orders.values()
                        if o.approved_on and start <= o.approved_on <= end)
        returns = sorted(r.return_id for r in self.returns_.values()
                         if start <= r.received_on <= end)
        return orders, returns


@dataclass
class FakeOwnership:
    registrations: dict[str, Registration] = field(default_factory=dict)
    leads: dict[tuple, LeadEvent] = field(default_factory=dict)

    async def registration(self, registration_id):
        return self.registrations.get(registration_id)

    async def put_registration(self, registration):
        self.registrations[registration.registration_id] = registration

    async def add_lead_event(self, event):
        key = (event.lead_id, event.dealer_id, event.day, event.assigned)
        if key in self.leads:
            return False
        self.leads[key] = event
        return True

    async def move_customer(self, from_id, to_id):
        moved = [replace(r, customer_id=to_id) for r in self.registrations.values()
                 if r.customer_id == from_id]
        self.registrations.update({r.registration_id: r for r in moved})
        self.leads = {key: replace(e, customer_id=to_id) if e.customer_id == from_id else e
                      for key, e in self.leads.items()}
        return moved

    async def spans(self, dealer_id, customer_ids) -> list[Ownership]:
        spans = [r.span() for r in self.registrations.values()
                 if r.dealer_id == dealer_id and r.customer_id in customer_ids]
        leads = [e for e in self.leads.values() if e.dealer_id == dealer_id]
        return [s for s in spans if s] + [s for s in lead_spans(leads)
                                          if s.customer_id in customer_ids]


@dataclass
class FakeDealers:
    dealers: dict[str, Dealer] = field(default_factory=dict)
    assignments: set[tuple[str, str, str]] = field(default_factory=set)

    async def get(self, dealer_id):
        return self.dealers.get(dealer_id)

    async def put(self, dealer):
        self.dealers[dealer.id] = dealer

    async def by_credit_code(self, credit_code):
        return next((d for d in self.dealers.values() if d.credit_code == credit_code), None)

    async def all(self):
        return list(self.dealers.values())

    async def assign(self, manager_user_id, dealer_id, product_line, assigned):
        key = (manager_user_id, dealer_id, product_line)
        if assigned:
            self.assignments.add(key)
        else:
            self.assignments.discard(key)

    async def managers(self):
        found: dict[str, set[str]] = {}
        for manager, dealer, _ in self.assignments:
            found.setdefault(dealer, set()).add(manager)
        return found


@dataclass
class FakeRules:
    rules: dict[str, CommissionRule] = field(default_factory=dict)

    async def all(self):
        return list(self.rules.values())

    async def get(self, rule_id):
        return self.rules.get(rule_id)

    async def put(self, rule):
        self.rules[rule.id] = rule


@dataclass
class FakePrograms:
    versions_: dict[str, list[Program]] = field(default_factory=dict)
    members_: dict[str, set[str]] = field(default_factory=dict)

    async def add_version(self, program):
        self.versions_.setdefault(program.id, []).append(program)

    async def versions(self, program_id):
        return list(self.versions_.get(program_id, []))

    async def all(self):
        return {k: list(v) for k, v in self.versions_.items()}

    async def members(self, program_id):
        return set(self.members_.get(program_id, set()))

    async def set_member(self, program_id, dealer_id, member):
        chosen = self.members_.setdefault(program_id, set())
        if member:
            chosen.add(dealer_id)
        else:
            chosen.discard(dealer_id)

    async def add_members(self, program_id, dealer_ids):
        self.members_.setdefault(program_id, set()).update(dealer_ids)

    async def programs_of(self, dealer_id):
        return {p for p, members in self.members_.items() if dealer_id in members}


@dataclass
class FakeTargets:
    targets: dict[tuple, Target] = field(default_factory=dict)

    async def put(self, target):
        created = target.key not in self.targets
        self.targets[target.key] = target
        return created

    async def of(self, dealer_ids, period: Period | None = None, product_line=""):
        return [t for t in self.targets.values()
                if (dealer_ids is None or t.dealer_id in dealer_ids)
                and (period is None or (t.period.start >= period.start
                                        and t.period.end <= period.end))
                and (not product_line or t.product_line == product_line)]


@dataclass
class FakeAccruals:
    rows: list[Accrual] = field(default_factory=list)

    async def add_all(self, accruals):
        self.rows += accruals

    async def get(self, accrual_id):
        return next((a for a in self.rows if a.id == accrual_id), None)

    async def booked(self, unit_type, unit_ids):
        held: dict[str, Lines] = {}
        wanted = set(unit_ids)
        for row in self.rows:
            if row.key.unit_type is unit_type and row.key.unit_id in wanted:
                add_to(held.setdefault(row.key.unit_id, {}), row.key, row.amounts)
        return held

    async def booked_rebates(self, program_id, period_start):
        held: Lines = {}
        for row in self.rows:
            if (row.key.unit_type is UnitType.REBATE and row.key.scheme_id == program_id
                    and row.key.period_start == period_start):
                add_to(held, row.key, row.amounts)
        return held

    async def page(self, which: AccrualFilter, page):
        matching = sorted(await self.matching(which),
                          key=lambda a: (-a.recorded_at.timestamp(), a.id))
        return _page(matching, page)

    async def matching(self, which):
        return [a for a in self.rows if which.matches(a)]

    async def unfrozen_periods(self, company):
        return sorted({(a.key.period_start, a.key.period_end) for a in self.rows
                       if not a.settlement_id and a.key.selling_company == company})

    async def freeze(self, company, periods, period_id, adjustment):
        spans = set(periods)
        self.rows = [a.frozen_into(period_id, adjustment)
                     if not a.settlement_id and a.key.selling_company == company
                     and (a.key.period_start, a.key.period_end) in spans else a
                     for a in self.rows]

    async def frozen(self, period_id):
        return [a for a in self.rows if a.settlement_id == period_id]

    async def totals(self, dealer_ids, start, end):
        sums: dict[tuple, list[int]] = {}
        for a in self.rows:
            if dealer_ids is not None and a.dealer_id not in dealer_ids:
                continue
            if (start and a.key.period_start < start) or (end and a.key.period_start > end):
                continue
            key = (a.dealer_id, month_of(a.key.period_start), a.key.kind.value)
            total = sums.setdefault(key, [0, 0, 0])
            total[0] += a.amounts.amount_minor
            total[1] += a.amounts.amount_minor if a.settlement_id else 0
            total[2] += 1
        return sorted((*k, *v) for k, v in sums.items())


@dataclass
class FakeSettlements:
    months: dict[tuple[str, str], str] = field(default_factory=dict)
    periods_: dict[str, SettlementPeriod] = field(default_factory=dict)
    settlements: dict[str, Settlement] = field(default_factory=dict)

    async def closed_months(self, company=None):
        return {m for c, m in self.months if company is None or c == company}

    async def close_months(self, company, months, period_id):
        taken = [m for m in months if (company, m) in self.months]
        if taken:
            raise AlreadyExists(f"{', '.join(taken)} already closed for {company}",
                                reason="PERIOD_CLOSED")
        for month in months:
            self.months[(company, month)] = period_id

    async def add_period(self, period):
        self.periods_[period.id] = period

    async def put_period(self, period):
        self.periods_[period.id] = period

    async def get_period(self, period_id):
        return self.periods_.get(period_id)

    async def periods(self, company, page):
        chosen = sorted((p for p in self.periods_.values()
                         if not company or p.selling_company == company),
                        key=lambda p: (p.period.start, p.id), reverse=True)
        return _page(chosen, page)

    async def add_settlements(self, settlements):
        for s in settlements:
            self.settlements[s.id] = s

    async def put_settlement(self, settlement):
        self.settlements[settlement.id] = settlement

    async def get(self, settlement_id):
        return self.settlements.get(settlement_id)

    async def of_period(self, period_id):
        return sorted((s for s in self.settlements.values() if s.period_id == period_id),
                      key=lambda s: s.dealer_id)

    async def page(self, period_id, dealer_ids, status, page):
        chosen = sorted((s for s in self.settlements.values()
                         if (not period_id or s.period_id == period_id)
                         and (dealer_ids is None or s.dealer_id in dealer_ids)
                         and (not status or s.status.value == status)),
                        key=lambda s: (s.period.start, s.dealer_id), reverse=True)
        return _page(chosen, page)

    async def find(self, dealer_id, start, end):
        return next((s for s in self.settlements.values() if s.dealer_id == dealer_id
                     and (s.period.start, s.period.end) == (start, end)), None)


class FakeIncentiveUnitOfWork(FakeUnitOfWork):
    repositories = ("sales", "orders", "ownership", "dealers", "rules", "programs", "targets",
                    "accruals", "settlements")

    def __init__(self) -> None:
        super().__init__()
        self.sales = FakeSales()
        self.orders = FakeOrders()
        self.ownership = FakeOwnership()
        self.dealers = FakeDealers()
        self.rules = FakeRules()
        self.programs = FakePrograms()
        self.targets = FakeTargets()
        self.accruals = FakeAccruals()
        self.settlements = FakeSettlements()


@dataclass
class FakeAudiences:
    """identity's QueryAudience: the known dealers matching an expression."""

    uow: FakeIncentiveUnitOfWork

    async def members(self, expression, product_lines):
        from services.incentive.domain.dealers import in_audience
        from services.incentive.messages import audience_predicate

        predicate = audience_predicate(expression)
        return {d.id for d in self.uow.dealers.dealers.values()
                if in_audience(d, predicate, product_lines)}


class FakeRenderer:
    def render(self, settlement, dealer):
        return f"statement-{settlement.dealer_id}.xlsx", repr(settlement).encode()


def fake_deps(rate_bps: int = 200, grace_days: int = 0,
              clock: FakeClock | None = None) -> tuple[Deps, FakeIncentiveUnitOfWork]:
    uow = FakeIncentiveUnitOfWork()
    deps = Deps(uow=lambda: uow, uow_in=lambda _transaction: uow,
                clock=clock or FakeClock(), ids=SequentialIds("id"), scopes=FakeScopes(),
                policy=Policy(default_rate_bps=rate_bps, grace_days=grace_days),
                audiences=FakeAudiences(uow), renderer=FakeRenderer())
    return deps, uow


def dealer(dealer_id: str, **changes) -> Dealer:
    return replace(Dealer(dealer_id, name=f"经销商 {dealer_id}", region_code="east",
                          tier="tier1", product_lines=("A系列",)), **changes)


__all__ = ["date", "dealer", "fake_deps"]
