"""The incentive service's domain objects as protobuf messages: its responses (api/)
and its event payloads (recorded by the use cases), and back where a request carries a
domain value. The one place domain ↔ protobuf is written."""

from __future__ import annotations

from datetime import date

from qudao.common.v1 import customer_source_pb2 as sources_pb2
from qudao.identity.v1 import identity_pb2
from qudao.incentive.v1 import incentive_pb2 as pb

from services.incentive.domain.accruals import Accrual, AccrualKind
from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    CustomerSource,
    Override,
    UnregisteredPolicy,
)
from services.incentive.domain.periods import Period, PeriodKind, parse_day
from services.incentive.domain.programs import Program, ProgramStatus
from services.incentive.domain.settlement import (
    LineKind,
    Settlement,
    SettlementPeriod,
    SettlementStatus,
    StatementLine,
    settlement_id,
)
from services.incentive.domain.targets import Target, TargetMeasure
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier
from shared.audience import Node, Predicate, compile_expression
from shared.convert import money_to_proto, to_timestamp
from shared.errors import InvalidArgument
from shared.money import Money

KIND_TO_PROTO = {
    AccrualKind.COMMISSION: pb.ACCRUAL_KIND_COMMISSION,
    AccrualKind.REBATE: pb.ACCRUAL_KIND_REBATE,
    AccrualKind.CARRIED_FORWARD: pb.ACCRUAL_KIND_UNSPECIFIED,
}
PROTO_TO_KIND = {pb.ACCRUAL_KIND_COMMISSION: AccrualKind.COMMISSION,
                 pb.ACCRUAL_KIND_REBATE: AccrualKind.REBATE}
SOURCE_TO_PROTO = {
    CustomerSource.DEALER_SOURCED.value: sources_pb2.CUSTOMER_SOURCE_DEALER_SOURCED,
    CustomerSource.HQ_LEAD.value: sources_pb2.CUSTOMER_SOURCE_HQ_LEAD,
    CustomerSource.UNREGISTERED.value: sources_pb2.CUSTOMER_SOURCE_UNREGISTERED,
}
PROTO_TO_SOURCE = {number: CustomerSource(name) for name, number in SOURCE_TO_PROTO.items()}
BASE_TO_PROTO = {CommissionBase.SELL_THROUGH: pb.COMMISSION_BASE_SELL_THROUGH,
                 CommissionBase.APPROVED_ORDERS: pb.COMMISSION_BASE_APPROVED_ORDERS}
UNREGISTERED_TO_PROTO = {UnregisteredPolicy.BASE_RATE: pb.UNREGISTERED_POLICY_BASE_RATE,
                         UnregisteredPolicy.NOTHING: pb.UNREGISTERED_POLICY_NOTHING}
MODE_TO_PROTO = {Mode.RETROACTIVE: pb.REBATE_MODE_TIERED_RETROACTIVE,
                 Mode.MARGINAL: pb.REBATE_MODE_MARGINAL}
BASIS_TO_PROTO = {Basis.QUANTITY: pb.REBATE_BASIS_QUANTITY, Basis.AMOUNT: pb.REBATE_BASIS_AMOUNT,
                  Basis.PURCHASE_AMOUNT: pb.REBATE_BASIS_PURCHASE_AMOUNT}
PERIOD_TO_PROTO = {PeriodKind.MONTH: pb.PERIOD_KIND_MONTH,
                   PeriodKind.QUARTER: pb.PERIOD_KIND_QUARTER,
                   PeriodKind.YEAR: pb.PERIOD_KIND_YEAR}
STATUS_TO_PROTO = {SettlementStatus.CLOSED: pb.SETTLEMENT_STATUS_CLOSED,
                   SettlementStatus.SETTLED: pb.SETTLEMENT_STATUS_SETTLED}
PROGRAM_STATUS_TO_PROTO = {ProgramStatus.ACTIVE: pb.REBATE_PROGRAM_STATUS_ACTIVE,
                           ProgramStatus.CLOSED: pb.REBATE_PROGRAM_STATUS_CLOSED}
LINE_TO_PROTO = {LineKind.REBATE: pb.SETTLEMENT_LINE_KIND_REBATE,
                 LineKind.COMMISSION: pb.SETTLEMENT_LINE_KIND_COMMISSION,
                 LineKind.ADJUSTMENT: pb.SETTLEMENT_LINE_KIND_ADJUSTMENT,
                 LineKind.CARRIED_FORWARD: pb.SETTLEMENT_LINE_KIND_CARRIED_FORWARD}
MEASURE_TO_PROTO = {TargetMeasure.SELL_THROUGH_QUANTITY: pb.TARGET_MEASURE_SELL_THROUGH_QUANTITY,
                    TargetMeasure.SELL_THROUGH_AMOUNT: pb.TARGET_MEASURE_SELL_THROUGH_AMOUNT,
                    TargetMeasure.PURCHASE_AMOUNT: pb.TARGET_MEASURE_PURCHASE_AMOUNT}
TIER_NAMES = {identity_pb2.DEALER_TIER_PLATFORM: "platform", identity_pb2.DEALER_TIER_ONE: "tier1",
              identity_pb2.DEALER_TIER_TWO: "tier2"}


def _reverse(mapping: dict) -> dict:
    return {value: key for key, value in mapping.items()}


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _optional_day(text: str, field: str) -> date | None:
    return parse_day(text, field) if text.strip() else None


def accrual_to_proto(accrual: Accrual) -> pb.Accrual:
    key = accrual.key
    return pb.Accrual(
        id=accrual.id, dealer_id=key.dealer_id, kind=KIND_TO_PROTO[key.kind],
        source_type=key.unit_type.value, source_id=key.unit_id,
        base_amount=money_to_proto(accrual.base), rate_bps=key.rate_bps,
        amount=money_to_proto(accrual.amount), recorded_at=to_timestamp(accrual.recorded_at),
        source_event_id=accrual.cause_id,
        program_id=key.scheme_id if key.kind is AccrualKind.REBATE else "",
        commission_rule_id=key.scheme_id if key.kind is AccrualKind.COMMISSION else "",
        product_line=key.product_line,
        customer_source=SOURCE_TO_PROTO.get(key.customer_source, 0),
        settlement_id=(settlement_id(accrual.settlement_id, key.dealer_id)
                       if accrual.settlement_id else ""),
        quantity=accrual.amounts.quantity, period_start=_day(key.period_start),
        period_end=_day(key.period_end), program_version=key.scheme_version,
        tier_number=key.tier, cause=accrual.cause, adjustment=accrual.adjustment,
        selling_company=key.selling_company)


# ------------------------------------------------------------------ commission rules
def rule_to_proto(rule: CommissionRule) -> pb.CommissionRule:
    return pb.CommissionRule(
        id=rule.id, name=rule.name, product_line=rule.product_line,
        rates=[pb.SourceRate(source=SOURCE_TO_PROTO[s.value], rate_bps=r)
               for s, r in sorted(rule.source_rates.items()) if s.value in SOURCE_TO_PROTO],
        overrides=[pb.CommissionOverride(
            dealer_id=o.dealer_id, customer_id=o.customer_id, product_code=o.product_code,
            source=SOURCE_TO_PROTO.get(o.source.value, 0) if o.source else 0,
            rate_bps=o.rate_bps, reason=o.reason, valid_from=_day(o.valid_from),
            valid_to=_day(o.valid_to)) for o in rule.overrides],
        valid_from=_day(rule.valid_from), valid_to=_day(rule.valid_to), active=rule.active,
        updated_at=to_timestamp(rule.updated_at), updated_by=rule.updated_by,
        base=BASE_TO_PROTO[rule.base], base_rate_bps=rule.base_rate_bps,
        unregistered=UNREGISTERED_TO_PROTO[rule.unregistered])


def rule_from_proto(message: pb.CommissionRule) -> CommissionRule:
    rates = {}
    for index, rate in enumerate(message.rates):
        source = PROTO_TO_SOURCE.get(rate.source)
        if source is None:
            raise InvalidArgument.field(f"rule.rates[{index}].source",
                                        "must be DEALER_SOURCED, HQ_LEAD or UNREGISTERED")
        rates[source] = rate.rate_bps
    overrides = tuple(Override(
        rate_bps=o.rate_bps, dealer_id=o.dealer_id.strip(), customer_id=o.customer_id.strip(),
        product_code=o.product_code.strip(), source=PROTO_TO_SOURCE.get(o.source),
        valid_from=_optional_day(o.valid_from, f"rule.overrides[{i}].valid_from"),
        valid_to=_optional_day(o.valid_to, f"rule.overrides[{i}].valid_to"),
        reason=o.reason.strip()) for i, o in enumerate(message.overrides))
    if not message.valid_from.strip():
        raise InvalidArgument.field("rule.valid_from", "is required (YYYY-MM-DD)")
    return CommissionRule(
        id=message.id.strip(), name=message.name.strip(),
        product_line=message.product_line.strip(),
        base=_reverse(BASE_TO_PROTO).get(message.base, CommissionBase.SELL_THROUGH),
        base_rate_bps=message.base_rate_bps, source_rates=rates,
        unregistered=_reverse(UNREGISTERED_TO_PROTO).get(message.unregistered,
                                                         UnregisteredPolicy.BASE_RATE),
        overrides=overrides, valid_from=parse_day(message.valid_from, "rule.valid_from"),
        valid_to=_optional_day(message.valid_to, "rule.valid_to"),
        active=message.active or not message.id)


# --------------------------------------------------------------------------- programs
def audience_predicate(expression: bytes) -> Predicate | None:
    """The compiled audience (None: no expression); InvalidArgument names what is
    wrong."""
    if not expression:
        return None
    message = identity_pb2.AudienceExpression.FromString(expression)
    return compile_expression(_node(message), "program.audience")


def _node(expression: identity_pb2.AudienceExpression) -> Node:
    which = expression.WhichOneof("expression")
    if which == "term":
        kind = expression.term.WhichOneof("term")
        if kind is None:
            raise InvalidArgument.field("program.audience.term", "is empty")
        value = getattr(expression.term, kind)
        if kind == "tier":
            value = TIER_NAMES.get(value, "")
        return Node("term", kind=kind, value=value)
    if which in ("all_of", "any_of"):
        return Node("all" if which == "all_of" else "any",
                    tuple(_node(e) for e in getattr(expression, which).expressions))
    if which == "negate":
        return Node("not", (_node(expression.negate),))
    raise InvalidArgument.field("program.audience", "an expression is required")


def _tier_to_proto(tier: Tier, threshold: Threshold, currency: str) -> pb.RebateTier:
    message = pb.RebateTier(rate_bps=tier.rate_bps)
    if tier.fixed_minor:
        message.fixed_amount.CopyFrom(money_to_proto(Money(tier.fixed_minor, currency)))
    if threshold is Threshold.QUANTITY:
        message.min_quantity = tier.threshold
    elif threshold is Threshold.AMOUNT:
        message.min_amount.CopyFrom(money_to_proto(Money(tier.threshold, currency)))
    else:
        message.min_target_share_bps = tier.threshold
    return message


def program_to_proto(program: Program, members: int = 0,
                     previous: list[Program] | None = None) -> pb.RebateProgram:
    message = pb.RebateProgram(
        id=program.id, name=program.name, description=program.description,
        product_line=program.product_lines[0] if program.product_lines else "",
        period_start=_day(program.start), period_end=_day(program.end),
        mode=MODE_TO_PROTO[program.scheme.mode], basis=BASIS_TO_PROTO[program.basis],
        tiers=[_tier_to_proto(t, program.scheme.threshold, program.currency)
               for t in program.scheme.tiers],
        currency=program.currency, status=PROGRAM_STATUS_TO_PROTO[program.status],
        created_at=to_timestamp(program.created_at), created_by=program.created_by,
        product_lines=program.product_lines, product_codes=program.product_codes,
        period=PERIOD_TO_PROTO[program.period_kind], version=program.version,
        effective_from=_day(program.effective_from),
        selling_company=program.selling_company, member_count=members,
        previous_versions=[program_to_proto(p) for p in previous or []])
    if program.audience:
        message.audience.ParseFromString(program.audience)
    if program.scheme.cap_minor is not None:
        message.cap.CopyFrom(money_to_proto(Money(program.scheme.cap_minor, program.currency)))
    return message


def program_from_proto(message: pb.RebateProgram) -> Program:
    currency = message.currency.strip() or "CNY"
    # A tier naming no threshold starts at 0 (what JSON carries for a zero threshold).
    kinds = {t.WhichOneof("threshold") for t in message.tiers} - {None}
    if len(kinds) > 1:
        raise InvalidArgument.field("program.tiers", "every tier starts at the same kind of "
                                                     "threshold")
    kind = kinds.pop() if kinds else "min_quantity"
    threshold = {"min_quantity": Threshold.QUANTITY, "min_amount": Threshold.AMOUNT,
                 "min_target_share_bps": Threshold.TARGET_SHARE, None: Threshold.QUANTITY}[kind]
    tiers = []
    for index, tier in enumerate(message.tiers):
        for money, path in ((tier.min_amount, "min_amount"), (tier.fixed_amount, "fixed_amount")):
            if money.currency and money.currency != currency:
                raise InvalidArgument.field(f"program.tiers[{index}].{path}",
                                            f"must be in {currency}")
        value = {"min_quantity": tier.min_quantity, "min_amount": tier.min_amount.amount_minor,
                 "min_target_share_bps": tier.min_target_share_bps}.get(kind, 0)
        tiers.append(Tier(value, tier.rate_bps, tier.fixed_amount.amount_minor))
    named = [message.product_line, *message.product_lines]
    lines = tuple(dict.fromkeys(name.strip() for name in named if name.strip()))
    if message.basis not in _reverse(BASIS_TO_PROTO):
        raise InvalidArgument.field("program.basis", "QUANTITY, AMOUNT or PURCHASE_AMOUNT")
    if message.mode not in _reverse(MODE_TO_PROTO):
        raise InvalidArgument.field("program.mode", "TIERED_RETROACTIVE or MARGINAL")
    start = parse_day(message.period_start, "program.period_start")
    return Program(
        id="", version=0, name=message.name.strip(), product_lines=lines,
        product_codes=tuple(dict.fromkeys(c.strip() for c in message.product_codes if c.strip())),
        period_kind=_reverse(PERIOD_TO_PROTO).get(message.period, PeriodKind.QUARTER),
        start=start, end=parse_day(message.period_end, "program.period_end"),
        effective_from=start, basis=_reverse(BASIS_TO_PROTO)[message.basis],
        scheme=Scheme(_reverse(MODE_TO_PROTO)[message.mode], threshold, tuple(tiers),
                      message.cap.amount_minor if message.HasField("cap") else None),
        currency=currency, selling_company=message.selling_company.strip(),
        description=message.description.strip(),
        audience=(message.audience.SerializeToString()
                  if message.HasField("audience") else b""))


# ------------------------------------------------------------------------ settlement
def settlement_period_to_proto(period: SettlementPeriod) -> pb.SettlementPeriod:
    return pb.SettlementPeriod(
        id=period.id, period_start=_day(period.period.start), period_end=_day(period.period.end),
        selling_company=period.selling_company, status=STATUS_TO_PROTO[period.status],
        dealer_count=period.dealer_count,
        total=money_to_proto(Money(period.total_minor, period.currency)),
        closed_at=to_timestamp(period.closed_at), closed_by=period.closed_by,
        settled_at=to_timestamp(period.settled_at), settled_by=period.settled_by,
        period=period.period.label)


def line_to_proto(line: StatementLine, currency: str) -> pb.SettlementLine:
    return pb.SettlementLine(
        kind=LINE_TO_PROTO[line.kind], program_id=line.scheme_id if line.tier or line.kind
        is LineKind.REBATE else "", program_name=line.scheme_name,
        product_line=line.product_line, volume_quantity=line.quantity,
        volume_amount=money_to_proto(Money(line.base_minor, currency)),
        tier_number=line.tier, rate_bps=line.rate_bps,
        amount=money_to_proto(Money(line.amount_minor, currency)),
        accrual_count=line.accrual_count,
        customer_source=SOURCE_TO_PROTO.get(line.customer_source, 0),
        commission_rule_id=line.scheme_id if line.kind is LineKind.COMMISSION else "",
        period_start=_day(line.period_start), period_end=_day(line.period_end),
        sources=list(line.sources))


def settlement_to_proto(settlement: Settlement) -> pb.Settlement:
    return pb.Settlement(
        id=settlement.id, settlement_period_id=settlement.period_id,
        dealer_id=settlement.dealer_id, selling_company=settlement.selling_company,
        period_start=_day(settlement.period.start), period_end=_day(settlement.period.end),
        status=STATUS_TO_PROTO[settlement.status],
        lines=[line_to_proto(line, settlement.currency) for line in settlement.lines],
        total=money_to_proto(Money(settlement.total_minor, settlement.currency)),
        credit_id=settlement.credit_id, closed_at=to_timestamp(settlement.closed_at),
        settled_at=to_timestamp(settlement.settled_at),
        carried_forward=money_to_proto(Money(settlement.carried_forward_minor,
                                             settlement.currency)))


def statement_to_proto(settlement: Settlement, provisional: bool) -> pb.RebateStatement:
    return pb.RebateStatement(
        dealer_id=settlement.dealer_id, period_start=_day(settlement.period.start),
        period_end=_day(settlement.period.end), provisional=provisional,
        settlement_id=settlement.id, status=0 if provisional else STATUS_TO_PROTO[
            settlement.status],
        lines=[line_to_proto(line, settlement.currency) for line in settlement.lines],
        total=money_to_proto(Money(settlement.total_minor, settlement.currency)))


# --------------------------------------------------------------------------- targets
def target_to_proto(target: Target) -> pb.Target:
    return pb.Target(dealer_id=target.dealer_id, product_line=target.product_line,
                     period=target.period.label, measure=MEASURE_TO_PROTO[target.measure],
                     value=target.value, currency=target.currency,
                     updated_at=to_timestamp(target.updated_at), updated_by=target.updated_by)


def target_from_proto(message: pb.Target, index: int, currency: str) -> Target:
    measure = _reverse(MEASURE_TO_PROTO).get(message.measure)
    if measure is None:
        raise InvalidArgument.field(f"targets[{index}].measure", "is required")
    return Target(message.dealer_id.strip(), message.product_line.strip(),
                  Period.parse(message.period, f"targets[{index}].period"), measure,
                  message.value, message.currency.strip() or currency)
