"""The incentive service's gRPC servicer: translate the request, call the use case,
translate the answer."""

from __future__ import annotations

from qudao.common.v1 import files_pb2
from qudao.incentive.v1 import incentive_pb2 as pb
from qudao.incentive.v1 import incentive_pb2_grpc

from services.incentive.domain.accruals import AccrualFilter
from services.incentive.domain.periods import Period, PeriodKind, parse_day
from services.incentive.messages import (
    PROTO_TO_KIND,
    STATUS_TO_PROTO,
    accrual_to_proto,
    program_from_proto,
    program_to_proto,
    rule_from_proto,
    rule_to_proto,
    settlement_period_to_proto,
    settlement_to_proto,
    statement_to_proto,
    target_from_proto,
    target_to_proto,
)
from services.incentive.usecases import (
    accruals,
    programs,
    rules,
    settlement,
    targets,
)
from services.incentive.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import (
    from_timestamp,
    money_to_proto,
    page_info_of,
    page_request_of,
)
from shared.errors import InvalidArgument
from shared.money import Money
from shared.pagination import page_of
from shared.tabular import read_table_isolated

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GROUPINGS = {pb.REPORT_GROUPING_DEALER: "dealer", pb.REPORT_GROUPING_CHANNEL_MANAGER:
             "channel_manager", pb.REPORT_GROUPING_REGION: "region",
             pb.REPORT_GROUPING_PERIOD: "period"}
STATUS_NAMES = {value: key.value for key, value in STATUS_TO_PROTO.items()}




def _period(text: str, field: str = "period") -> Period | None:
    return Period.parse(text, field) if text.strip() else None


def _span(start: str, end: str) -> Period | None:
    if not start and not end:
        return None
    return Period.between(parse_day(start, "period_start"), parse_day(end, "period_end"))


class IncentiveServicer(incentive_pb2_grpc.IncentiveServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _use(self, **extra) -> dict:
        deps = self.deps
        return {"who": current_principal(), "uow": deps.uow(), **extra}

    def _write(self) -> dict:
        deps = self.deps
        return self._use(clock=deps.clock, ids=deps.ids, policy=deps.policy)

    # --------------------------------------------------------------------- accruals
    async def ListAccruals(self, request, context):
        period = _period(request.period)
        which = AccrualFilter(
            source_id=request.source_id.strip(), kind=PROTO_TO_KIND.get(request.kind),
            scheme_id=request.program_id.strip(), settlement_id=request.settlement_id.strip(),
            period_start=period.start if period else None,
            period_end=period.end if period else None,
            recorded_after=from_timestamp(request.recorded_after),
            recorded_before=from_timestamp(request.recorded_before))
        requested = page_request_of(request.page)
        page = await accruals.list_accruals(which, request.dealer_id.strip(), requested,
                                            **self._use(scopes=self.deps.scopes))
        return pb.ListAccrualsResponse(accruals=[accrual_to_proto(a) for a in page.items],
                                       page=page_info_of(page))

    async def GetAccrual(self, request, context):
        accrual = await accruals.get_accrual(request.id, **self._use(scopes=self.deps.scopes))
        return pb.GetAccrualResponse(accrual=accrual_to_proto(accrual))

    # ------------------------------------------------------------------------ rules
    async def UpsertCommissionRule(self, request, context):
        rule, created = await rules.upsert_rule(rule_from_proto(request.rule),
                                                scopes=self.deps.scopes, **self._write())
        return pb.UpsertCommissionRuleResponse(rule=rule_to_proto(rule), created=created)

    async def ListCommissionRules(self, request, context):
        on = parse_day(request.active_on, "active_on") if request.active_on else None
        requested = page_request_of(request.page)
        page = await rules.list_rules(request.product_line.strip(), on, requested,
                                      **self._use(scopes=self.deps.scopes))
        return pb.ListCommissionRulesResponse(rules=[rule_to_proto(r) for r in page.items],
                                              page=page_info_of(page))

    # --------------------------------------------------------------------- programs
    async def CreateRebateProgram(self, request, context):
        program, members = await programs.create_program(
            program_from_proto(request.program), audiences=self.deps.audiences,
            **self._write())
        return pb.CreateRebateProgramResponse(program=program_to_proto(program, members),
                                              dealer_count=members)

    async def UpdateRebateProgram(self, request, context):
        program = await programs.update_program(
            request.id, program_from_proto(request.program),
            parse_day(request.effective_from, "effective_from"),
            audiences=self.deps.audiences, **self._write())
        versions, members = await programs.get_program(
            program.id, **self._use(scopes=self.deps.scopes))
        return pb.UpdateRebateProgramResponse(program=program_to_proto(program, members,
                                                                       versions[:-1]))

    async def GetRebateProgram(self, request, context):
        versions, members = await programs.get_program(request.id,
                                                       **self._use(scopes=self.deps.scopes))
        return pb.GetRebateProgramResponse(program=program_to_proto(versions[-1], members,
                                                                    versions[:-1]))

    async def ListRebatePrograms(self, request, context):
        statuses = {pb.REBATE_PROGRAM_STATUS_ACTIVE: "active",
                    pb.REBATE_PROGRAM_STATUS_CLOSED: "closed"}
        which = programs.ProgramFilter(
            request.product_line.strip(), statuses.get(request.status, ""),
            parse_day(request.active_on, "active_on") if request.active_on else None,
            request.dealer_id.strip())
        page = await programs.list_programs(which, page_request_of(request.page),
                                            **self._use(scopes=self.deps.scopes))
        return pb.ListRebateProgramsResponse(
            programs=[program_to_proto(p, n) for p, n in page.items], page=page_info_of(page))

    async def GetWhatIf(self, request, context):
        more_amount = (request.additional_amount.amount_minor
                       if request.HasField("additional_amount") else None)
        found = await programs.what_if_for(
            request.program_id, request.dealer_id,
            parse_day(request.on, "on") if request.on else None,
            request.additional_quantity, more_amount, scopes=self.deps.scopes,
            **self._write())
        answer, currency = found.answer, found.program.currency

        def point(volume, outcome) -> pb.WhatIfPoint:
            return pb.WhatIfPoint(volume_quantity=volume.quantity,
                                  volume_amount=money_to_proto(Money(volume.amount_minor,
                                                                     currency)),
                                  tier_number=outcome.tier, rate_bps=outcome.rate_bps,
                                  rebate=money_to_proto(Money(outcome.rebate_minor, currency)))

        return pb.GetWhatIfResponse(
            current=point(answer.current_volume, answer.current),
            projected=point(answer.projected_volume, answer.projected),
            additional_rebate=money_to_proto(Money(
                answer.projected.rebate_minor - answer.current.rebate_minor, currency)),
            quantity_to_next_tier=answer.to_next_quantity,
            amount_to_next_tier=money_to_proto(Money(answer.to_next_amount_minor, currency)),
            next_tier_rate_bps=answer.next_rate_bps,
            period_start=found.period.start.isoformat(), period_end=found.period.end.isoformat(),
            rebate_at_next_tier=money_to_proto(Money(answer.rebate_at_next_minor, currency)),
            capped=answer.projected.capped, program_version=found.program.version)

    # ---------------------------------------------------------------------- targets
    async def SetTargets(self, request, context):
        chosen = [target_from_proto(t, i, self.deps.policy.currency)
                  for i, t in enumerate(request.targets)]
        created, updated = await targets.set_targets(chosen, scopes=self.deps.scopes,
                                                     **self._write())
        return pb.SetTargetsResponse(created=created, updated=updated)

    async def ImportTargets(self, request, context):
        table = await read_table_isolated(request.content, request.filename, request.format)
        outcome = await targets.import_targets(table, request.dry_run, **self._write())
        return pb.ImportTargetsResponse(
            created=outcome.created, updated=outcome.updated, rows=outcome.rows,
            errors=[files_pb2.RowError(row_number=number, column=p.column, code=p.code,
                                       message_zh=p.zh, message_en=p.en, value=p.value)
                    for number, p in outcome.problems])

    async def ListTargets(self, request, context):
        found = await targets.list_targets(request.dealer_id.strip(),
                                           request.product_line.strip(),
                                           _period(request.period),
                                           **self._use(scopes=self.deps.scopes))
        page = page_request_of(request.page)
        chunk = found[page.offset:page.offset + page.size + 1]
        paged = page_of(chunk, page, len(found))
        return pb.ListTargetsResponse(targets=[target_to_proto(t) for t in paged.items],
                                      page=page_info_of(paged))

    async def GetAchievement(self, request, context):
        period = _period(request.period) or Period.of(PeriodKind.YEAR,
                                                      self.deps.clock.now().date())
        found = await targets.achievement(request.dealer_id, period,
                                          scopes=self.deps.scopes, **self._write())
        return pb.GetAchievementResponse(achievements=[
            pb.Achievement(target=target_to_proto(a.target), actual=a.actual,
                           share_bps=a.share_bps, remaining=a.remaining) for a in found])

    # --------------------------------------------------------------------- reports
    async def GetIncentiveReport(self, request, context):
        group_by = GROUPINGS.get(request.group_by)
        if group_by is None:
            raise InvalidArgument.field("group_by", "DEALER, CHANNEL_MANAGER, REGION or PERIOD")
        start = Period.parse(request.from_month, "from_month").start if request.from_month else None
        end = Period.parse(request.to_month, "to_month").end if request.to_month else None
        rows, total = await accruals.report(group_by, start, end,
                                            **self._use(scopes=self.deps.scopes))
        currency = self.deps.policy.currency

        def row(item) -> pb.ReportRow:
            return pb.ReportRow(key=item.key,
                                commission=money_to_proto(Money(item.commission_minor, currency)),
                                rebate=money_to_proto(Money(item.rebate_minor, currency)),
                                settled=money_to_proto(Money(item.settled_minor, currency)),
                                dealer_count=len(item.dealers), accrual_count=item.accruals)

        return pb.GetIncentiveReportResponse(rows=[row(r) for r in rows], total=row(total))

    # ------------------------------------------------------------------ settlement
    async def CloseSettlementPeriod(self, request, context):
        if request.program_ids:
            raise InvalidArgument.field("program_ids", "a close settles every program whose "
                                                       "period ends with it; name none")
        period = _period(request.period) or _span(request.period_start, request.period_end)
        if period is None:
            raise InvalidArgument.field("period", "name the period, e.g. 2026-Q1")
        record = await settlement.close_period(period, request.selling_company,
                                               **self._write())
        return pb.CloseSettlementPeriodResponse(period=settlement_period_to_proto(record))

    async def SettlePeriod(self, request, context):
        record, credited = await settlement.settle_period(request.settlement_period_id,
                                                          **self._write())
        return pb.SettlePeriodResponse(period=settlement_period_to_proto(record),
                                       credited=credited)

    async def ListSettlementPeriods(self, request, context):
        requested = page_request_of(request.page)
        page = await settlement.list_periods(request.selling_company.strip(), requested,
                                             **self._use())
        chosen = [p for p in page.items if not request.status
                  or STATUS_TO_PROTO[p.status] == request.status]
        return pb.ListSettlementPeriodsResponse(
            periods=[settlement_period_to_proto(p) for p in chosen], page=page_info_of(page))

    async def ListSettlements(self, request, context):
        page = await settlement.list_settlements(
            request.settlement_period_id.strip(), request.dealer_id.strip(),
            STATUS_NAMES.get(request.status, ""), page_request_of(request.page),
            **self._use(scopes=self.deps.scopes))
        return pb.ListSettlementsResponse(
            settlements=[settlement_to_proto(s) for s in page.items], page=page_info_of(page))

    async def _statement(self, request):
        return await settlement.statement(
            request.settlement_id.strip(), request.dealer_id.strip(),
            _span(request.period_start, request.period_end), scopes=self.deps.scopes,
            **self._write())

    async def GetRebateStatement(self, request, context):
        found, provisional = await self._statement(request)
        return pb.GetRebateStatementResponse(statement=statement_to_proto(found, provisional))

    async def ExportStatement(self, request, context):
        found, _ = await self._statement(request)
        async with self.deps.uow().read() as uow:
            dealer = await uow.dealers.get(found.dealer_id)
        filename, content = self.deps.renderer.render(found, dealer)
        return pb.ExportStatementResponse(file=files_pb2.ExportedFile(
            filename=filename, content_type=XLSX, content=content))

    async def RecomputePeriod(self, request, context):
        period = _period(request.period)
        if period is None:
            raise InvalidArgument.field("period", "is required, e.g. 2026-Q1")
        corrections, units = await settlement.recompute_period(period, **self._write())
        return pb.RecomputePeriodResponse(corrections=corrections, units=units)
