"""Engagement: follow-up SOP rules and tasks with the execution view, dealer health with
HQ's policy, and the signed-in user's notifications inbox."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from qudao.engagement.v1 import engagement_pb2 as pb

from gateway.clients import call
from gateway.protojson import enum_number, to_json
from gateway.routes.common import (
    Body,
    Caller,
    IdempotencyKey,
    IfMatch,
    Page,
    Services,
    idempotent,
    tagged,
)

router = APIRouter(prefix="/api/v1", tags=["engagement"])

Id = Annotated[str, Query(max_length=64)]
MAX_DEADLINE_MINUTES = 366 * 24 * 60


class RuleBody(Body):
    """An SOP rule: when ``trigger`` happens, ``assignee_role`` must make ``closing``
    happen within ``deadline_minutes`` (signals: see the engagement README)."""

    name: str = Field(min_length=1, max_length=200)
    trigger: str = Field(min_length=1, max_length=64, examples=["lead.assigned"])
    closing: str = Field(min_length=1, max_length=64, examples=["lead.claimed"])
    deadline_minutes: int = Field(ge=1, le=MAX_DEADLINE_MINUTES, examples=[60])
    assignee_role: Literal["dealer", "channel_manager"]


class RuleSwitchBody(Body):
    active: bool


class PolicyBody(Body):
    """What makes a dealer unhealthy; 0 turns a check off."""

    max_days_without_order: int = Field(30, ge=0, le=3660)
    require_flow_for_last_closed_month: bool = True
    flow_upload_grace_days: int = Field(10, ge=0, le=28)
    max_days_without_login: int = Field(30, ge=0, le=3660)
    statement_confirm_days: int = Field(15, ge=0, le=3660)
    expiring_notice_days: int = Field(14, ge=0, le=3660)


class MarkReadBody(Body):
    ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=500)
    all: bool = False


@router.get("/sop-rules")
async def list_sop_rules(caller: Caller, services: Services, page: Page) -> dict:
    return to_json(await call(services.engagement.ListSopRules,
                              pb.ListSopRulesRequest(page=page)))


@router.post("/sop-rules", status_code=201)
async def create_sop_rule(body: RuleBody, caller: Caller, services: Services,
                          key: IdempotencyKey) -> dict:
    rule = pb.SopRule(name=body.name, trigger=body.trigger, closing=body.closing,
                      deadline_minutes=body.deadline_minutes,
                      assignee_role=enum_number(pb.AssigneeRole.DESCRIPTOR, body.assignee_role))
    return to_json((await call(services.engagement.CreateSopRule,
                               pb.CreateSopRuleRequest(rule=rule),
                               metadata=idempotent(key))).rule)


@router.patch("/sop-rules/{rule_id}")
async def switch_sop_rule(rule_id: str, body: RuleSwitchBody, caller: Caller,
                          services: Services, version: IfMatch, response: Response) -> dict:
    """Stop a rule opening tasks (``active: false``; its open tasks still close) or
    resume it. With ``If-Match`` (the rule's ``version`` as an ETag, ``"2"``) only while
    no other switch came first (412 otherwise)."""
    return tagged(response, to_json((await call(
        services.engagement.SetSopRuleActive, pb.SetSopRuleActiveRequest(
            id=rule_id, active=body.active, expected_version=version))).rule))


@router.get("/tasks")
async def list_tasks(caller: Caller, services: Services, page: Page, mine: bool = False,
                     assignee_user_id: Id = "", dealer_id: Id = "",
                     status: Literal["", "open", "done"] = "", overdue_only: bool = False,
                     rule_id: Id = "") -> dict:
    return to_json(await call(services.engagement.ListTasks, pb.ListTasksRequest(
        mine=mine, assignee_user_id=assignee_user_id, dealer_id=dealer_id,
        status=enum_number(pb.TaskStatus.DESCRIPTOR, status) or 0,
        overdue_only=overdue_only, rule_id=rule_id, page=page)))


@router.get("/sop-execution")
async def sop_execution(caller: Caller, services: Services,
                        group_by: Literal["rule", "manager", "dealer"] = "rule") -> dict:
    return to_json(await call(services.engagement.GetSopExecution, pb.GetSopExecutionRequest(
        group_by=enum_number(pb.ExecutionGrouping.DESCRIPTOR, group_by))))


@router.get("/health-policy")
async def get_health_policy(caller: Caller, services: Services) -> dict:
    return to_json((await call(services.engagement.GetHealthPolicy,
                               pb.GetHealthPolicyRequest())).policy)


@router.put("/health-policy")
async def set_health_policy(body: PolicyBody, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.engagement.SetHealthPolicy, pb.SetHealthPolicyRequest(
        policy=pb.HealthPolicy(**body.model_dump())))).policy)


@router.get("/dealer-health")
async def list_dealer_health(caller: Caller, services: Services, page: Page,
                             manager_user_id: Id = "",
                             status: Literal["", "healthy", "at_risk", "inactive"] = "") -> dict:
    return to_json(await call(services.engagement.ListDealerHealth, pb.ListDealerHealthRequest(
        manager_user_id=manager_user_id,
        status=enum_number(pb.HealthStatus.DESCRIPTOR, status) or 0,
        page=page)))


@router.get("/dealers/{dealer_id}/health")
async def get_dealer_health(dealer_id: str, caller: Caller, services: Services) -> dict:
    return to_json((await call(services.engagement.GetDealerHealth,
                               pb.GetDealerHealthRequest(dealer_id=dealer_id))).health)


@router.get("/inbox")
async def list_inbox(caller: Caller, services: Services, page: Page,
                     unread_only: bool = False) -> dict:
    return to_json(await call(services.engagement.ListInbox,
                              pb.ListInboxRequest(unread_only=unread_only, page=page)))


@router.post("/inbox/read")
async def mark_inbox_read(body: MarkReadBody, caller: Caller, services: Services) -> dict:
    return to_json(await call(services.engagement.MarkInboxRead,
                              pb.MarkInboxReadRequest(ids=body.ids, all=body.all)))
