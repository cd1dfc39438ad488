"""The targets of accrual units: what the ledger must hold for a flow upload part, an
order, a return, or a dealer's period in a rebate program, computed from facts alone.
Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.incentive.domain.accruals import (
    AccrualKind,
    Amounts,
    LineKey,
    Lines,
    UnitType,
    add_to,
    flow_unit,
    rebate_unit,
)
from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    SaleContext,
    select_rule,
)
from services.incentive.domain.facts import (
    Diversion,
    Order,
    Ownership,
    PricedReturnLine,
    Return,
    Sale,
    counts,
    source_on,
)
from services.incentive.domain.periods import Period, PeriodKind
from services.incentive.domain.programs import Program
from services.incentive.domain.tiers import Volume, evaluate
from shared.money import Money


@dataclass(frozen=True)
class Rules:
    """The commission rules in force, and the implicit catch-all for sell-through where
    none applies (the service's default rate; None: nothing)."""

    rules: tuple[CommissionRule, ...]
    default: CommissionRule | None = None

    def for_sale(self, base: CommissionBase, product_line: str, day: date
                 ) -> CommissionRule | None:
        rule = select_rule(list(self.rules), base, product_line, day)
        if rule is None and base is CommissionBase.SELL_THROUGH:
            return self.default
        return rule


def _month(day: date) -> Period:
    return Period.of(PeriodKind.MONTH, day)


def _priced(lines: dict[LineKey, Amounts]) -> Lines:
    """Commission lines carry their base; the amount is the base at the line's rate,
    rounded once per line."""
    return {key: Amounts(value.base_minor, value.quantity,
                         Money(value.base_minor, key.currency).at_rate_bps(key.rate_bps)
                         .amount_minor)
            for key, value in lines.items()}


def flow_commission(upload_id: str, part_index: int, sales: list[Sale], superseded: bool,
                    diversions: list[Diversion], spans: list[Ownership], rules: Rules,
                    company: str) -> Lines:
    lines: Lines = {}
    unit = flow_unit(upload_id, part_index)
    for sale in sales:
        if not counts(sale, superseded, diversions):
            continue
        rule = rules.for_sale(CommissionBase.SELL_THROUGH, sale.product_line, sale.sold_on)
        if rule is None:
            continue
        source = source_on(spans, sale.dealer_id, sale.customer_id, sale.product_line,
                           sale.sold_on)
        rate = rule.rate_for(SaleContext(sale.dealer_id, sale.customer_id, sale.product_code,
                                         sale.product_line, sale.sold_on, source))
        if rate is None:
            continue
        month = _month(sale.sold_on)
        add_to(lines, LineKey(AccrualKind.COMMISSION, sale.dealer_id, company, month.start,
                              month.end, UnitType.FLOW, unit, rule.id, 0, source.value,
                              sale.product_line, 0, rate, sale.currency),
               Amounts(sale.amount_minor, sale.quantity, 0))
    return _priced(lines)


def order_commission(order: Order, rules: Rules) -> Lines:
    if not order.counts:
        return {}
    lines: Lines = {}
    day = order.approved_on
    month = _month(day)
    for line in order.lines:
        rule = rules.for_sale(CommissionBase.APPROVED_ORDERS, line.product_line, day)
        if rule is None or not line.counted_quantity:
            continue
        rate = rule.rate_for(SaleContext(order.dealer_id, "", line.product_code,
                                         line.product_line, day, None))
        add_to(lines, LineKey(AccrualKind.COMMISSION, order.dealer_id, order.selling_company,
                              month.start, month.end, UnitType.ORDER, order.order_id,
                              rule.id, 0, "", line.product_line, 0, rate, order.currency),
               Amounts(line.counted_amount, line.counted_quantity, 0))
    return _priced(lines)


def return_commission(returned: Return, priced: list[PricedReturnLine], rules: Rules) -> Lines:
    lines: Lines = {}
    day = returned.received_on
    month = _month(day)
    for line in priced:
        rule = rules.for_sale(CommissionBase.APPROVED_ORDERS, line.product_line, day)
        if rule is None or not line.line.quantity:
            continue
        rate = rule.rate_for(SaleContext(returned.dealer_id, "", line.line.product_code,
                                         line.product_line, day, None))
        add_to(lines, LineKey(AccrualKind.COMMISSION, returned.dealer_id,
                              returned.selling_company, month.start, month.end,
                              UnitType.RETURN, returned.return_id, rule.id, 0, "",
                              line.product_line, 0, rate, returned.currency),
               Amounts(-line.amount_minor, -line.line.quantity, 0))
    return _priced(lines)


def rebate_lines(program: Program, dealer_id: str, period: Period, volume: Volume,
                 target: int | None, company: str) -> Lines:
    if not volume.quantity and not volume.amount_minor:
        return {}
    outcome = evaluate(program.scheme, program.basis, volume, target)
    key = LineKey(AccrualKind.REBATE, dealer_id, program.selling_company or company,
                  period.start, period.end, UnitType.REBATE,
                  rebate_unit(program.id, dealer_id, period.start), program.id,
                  program.version, "", ",".join(program.product_lines or program.product_codes),
                  outcome.tier, 0, program.currency)
    return {key: Amounts(volume.amount_minor, volume.quantity, outcome.rebate_minor)}
