"""Incentives: accruals (dealer view), commission rules, rebate programs and targets (HQ),
what-if and achievement, statements with XLSX export, settlement and its approval,
reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from qudao.incentive.v1 import incentive_pb2 as pb

from gateway.clients import call
from gateway.import_jobs import run_import
from gateway.protojson import from_json, to_json
from gateway.routes.common import (
    XLSX_RESPONSES,
    Body,
    Caller,
    IdempotencyKey,
    Page,
    Services,
    file_response,
    idempotent,
)
from gateway.uploads import IMPORT_BODY, read_upload

router = APIRouter(prefix="/api/v1", tags=["incentive"])


class RuleBody(Body):
    rule: dict[str, Any]


class ProgramBody(Body):
    program: dict[str, Any]


class ProgramVersionBody(Body):
    program: dict[str, Any]
    effective_from: str


class TargetsBody(Body):
    targets: list[dict[str, Any]]


class CloseBody(Body):
    period: str
    selling_company: str = ""


@router.get("/accruals")
async def list_accruals(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                        source_id: str = "", period: str = "", program_id: str = "",
                        settlement_id: str = "") -> dict:
    return to_json(await call(services.incentive.ListAccruals, pb.ListAccrualsRequest(
        dealer_id=dealer_id, source_id=source_id, page=page, period=period,
        program_id=program_id, settlement_id=settlement_id)))


@router.get("/accruals/{accrual_id}")
async def get_accrual(accrual_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.incentive.GetAccrual,
                               pb.GetAccrualRequest(id=accrual_id))).accrual)


@router.get("/commission-rules")
async def list_rules(caller: Caller, services: Services, page: Page, product_line: str = "",
                     active_on: str = "") -> dict:
    return to_json(await call(services.incentive.ListCommissionRules,
                              pb.ListCommissionRulesRequest(product_line=product_line,
                                                            active_on=active_on, page=page)))


@router.post("/commission-rules", status_code=201)
async def upsert_rule(body: RuleBody, caller: Caller, services: Services,
                      key: IdempotencyKey) -> dict:
    return to_json(await call(services.incentive.UpsertCommissionRule,
                              pb.UpsertCommissionRuleRequest(
                                  rule=from_json(pb.CommissionRule, body.rule)),
                              metadata=idempotent(key)))


@router.get("/rebate-programs")
async def list_programs(caller: Caller, services: Services, page: Page, product_line: str = "",
                        dealer_id: str = "", active_on: str = "") -> dict:
    return to_json(await call(services.incentive.ListRebatePrograms,
                              pb.ListRebateProgramsRequest(product_line=product_line,
                                                           dealer_id=dealer_id,
                                                           active_on=active_on, page=page)))


@router.post("/rebate-programs", status_code=201)
async def create_program(body: ProgramBody, caller: Caller, services: Services,
                         key: IdempotencyKey) -> dict:
    return to_json(await call(services.incentive.CreateRebateProgram,
                              pb.CreateRebateProgramRequest(
                                  program=from_json(pb.RebateProgram, body.program)),
                              metadata=idempotent(key)))


@router.get("/rebate-programs/{program_id}")
async def get_program(program_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.incentive.GetRebateProgram,
                               pb.GetRebateProgramRequest(id=program_id))).program)


@router.post("/rebate-programs/{program_id}/versions", status_code=201)
async def new_version(program_id: str, body: ProgramVersionBody, caller: Caller,
                      services: Services, key: IdempotencyKey) -> dict:
    return to_json((await call(services.incentive.UpdateRebateProgram,
                               pb.UpdateRebateProgramRequest(
                                   id=program_id, program=from_json(pb.RebateProgram,
                                                                   body.program),
                                   effective_from=body.effective_from),
                               metadata=idempotent(key))).program)


@router.get("/rebate-programs/{program_id}/what-if")
async def what_if(program_id: str, caller: Caller, services: Services, dealer_id: str,
                  additional_quantity: Annotated[int, Query(ge=0, le=10**9)] = 0,
                  additional_amount_minor: Annotated[int | None, Query(ge=0, le=10**15)] = None,
                  on: str = "") -> dict:
    request = pb.GetWhatIfRequest(program_id=program_id, dealer_id=dealer_id,
                                  additional_quantity=additional_quantity, on=on)
    if additional_amount_minor is not None:
        request.additional_amount.amount_minor = additional_amount_minor
        request.additional_amount.currency = "CNY"
    return to_json(await call(services.incentive.GetWhatIf, request))


@router.get("/targets")
async def list_targets(caller: Caller, services: Services, page: Page, dealer_id: str = "",
                       product_line: str = "", period: str = "") -> dict:
    return to_json(await call(services.incentive.ListTargets, pb.ListTargetsRequest(
        dealer_id=dealer_id, product_line=product_line, period=period, page=page)))


@router.put("/targets")
async def set_targets(body: TargetsBody, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.incentive.SetTargets, pb.SetTargetsRequest(
        targets=[from_json(pb.Target, t) for t in body.targets])))


@router.post("/targets/import", openapi_extra=IMPORT_BODY)
async def import_targets(request: Request, caller: Caller, services: Services,
                         dry_run: bool = False, filename: str = ""):
    """Targets from a CSV/XLSX file; over 1 MiB (or ``Prefer: respond-async``) a job."""
    upload = await read_upload(request, filename)
    return await run_import(request, caller, "targets", upload, lambda timeout: call(
        services.incentive.ImportTargets, pb.ImportTargetsRequest(
            content=upload.content, filename=upload.filename, format=upload.format,
            dry_run=dry_run), timeout))


@router.get("/dealers/{dealer_id}/achievement")
async def achievement(dealer_id: str, caller: Caller, services: Services,
                      period: str = "") -> dict:
    return to_json(await call(services.incentive.GetAchievement, pb.GetAchievementRequest(
        dealer_id=dealer_id, period=period)))


@router.get("/incentive-reports")
async def report(caller: Caller, services: Services, group_by: str = "dealer",
                 from_month: str = "", to_month: str = "") -> dict:
    name = f"REPORT_GROUPING_{group_by.upper()}"
    known = pb.ReportGrouping.DESCRIPTOR.values_by_name
    grouping = known[name].number if name in known else 0
    return to_json(await call(services.incentive.GetIncentiveReport,
                              pb.GetIncentiveReportRequest(group_by=grouping,
                                                           from_month=from_month,
                                                           to_month=to_month)))


@router.get("/settlement-periods")
async def list_periods(caller: Caller, services: Services, page: Page,
                       selling_company: str = "") -> dict:
    return to_json(await call(services.incentive.ListSettlementPeriods,
                              pb.ListSettlementPeriodsRequest(selling_company=selling_company,
                                                              page=page)))


@router.post("/settlement-periods", status_code=201)
async def close_period(body: CloseBody, caller: Caller, services: Services,
                       key: IdempotencyKey) -> dict:
    return to_json((await call(services.incentive.CloseSettlementPeriod,
                               pb.CloseSettlementPeriodRequest(
                                   period=body.period, selling_company=body.selling_company),
                               metadata=idempotent(key))).period)


@router.post("/settlement-periods/{period_id}/approve")
async def approve_period(period_id: str, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.incentive.SettlePeriod,
                              pb.SettlePeriodRequest(settlement_period_id=period_id)))


@router.get("/settlements")
async def list_settlements(caller: Caller, services: Services, page: Page,
                           settlement_period_id: str = "", dealer_id: str = "") -> dict:
    return to_json(await call(services.incentive.ListSettlements, pb.ListSettlementsRequest(
        settlement_period_id=settlement_period_id, dealer_id=dealer_id, page=page)))


@router.get("/settlements/{settlement_id}")
async def get_settlement(settlement_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.incentive.GetRebateStatement,
                               pb.GetRebateStatementRequest(
                                   settlement_id=settlement_id))).statement)


@router.get("/settlements/{settlement_id}/export", response_class=Response,
            responses=XLSX_RESPONSES)
async def export_settlement(settlement_id: str, caller: Caller, services: Services) -> Response:
    """The statement as an XLSX workbook (no cell is ever a formula)."""
    return file_response((await call(services.incentive.ExportStatement,
                                     pb.ExportStatementRequest(settlement_id=settlement_id))).file)


@router.get("/dealers/{dealer_id}/statement")
async def provisional_statement(dealer_id: str, caller: Caller, services: Services,
                                period_start: str, period_end: str) -> dict:
    return to_json((await call(services.incentive.GetRebateStatement,
                               pb.GetRebateStatementRequest(
                                   dealer_id=dealer_id, period_start=period_start,
                                   period_end=period_end))).statement)
