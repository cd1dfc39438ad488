"""The engagement service's gRPC servicer: translate the request, call the use case,
translate the answer."""

from __future__ import annotations

from qudao.engagement.v1 import engagement_pb2 as pb
from qudao.engagement.v1 import engagement_pb2_grpc

from services.engagement.domain.sop import SopRule
from services.engagement.messages import (
    HEALTH_TO_PROTO,
    PROTO_TO_ROLE,
    PROTO_TO_STATUS,
    execution_row_to_proto,
    health_to_proto,
    inbox_item_to_proto,
    policy_from_proto,
    policy_to_proto,
    rule_to_proto,
    task_to_proto,
)
from services.engagement.usecases import health, inbox, sop
from services.engagement.usecases.ports import Deps
from shared.context import current_principal
from shared.convert import page_info_of, page_request_of
from shared.errors import InvalidArgument

GROUPINGS = {pb.EXECUTION_GROUPING_RULE: "rule", pb.EXECUTION_GROUPING_MANAGER: "manager",
             pb.EXECUTION_GROUPING_DEALER: "dealer"}
HEALTH_NAMES = {number: status.value for status, number in HEALTH_TO_PROTO.items()}




class EngagementServicer(engagement_pb2_grpc.EngagementServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _read(self, **extra) -> dict:
        return {"who": current_principal(), "uow": self.deps.uow(), **extra}

    # ------------------------------------------------------------------------ SOPs
    async def CreateSopRule(self, request, context):
        given = request.rule
        if given.assignee_role not in PROTO_TO_ROLE:
            raise InvalidArgument.field("rule.assignee_role", "must be dealer or channel_manager")
        rule = SopRule("", given.name, given.trigger.strip(), given.closing.strip(),
                       given.deadline_minutes, PROTO_TO_ROLE[given.assignee_role])
        created = await sop.create_rule(rule, **self._read(clock=self.deps.clock,
                                                           ids=self.deps.ids))
        return pb.CreateSopRuleResponse(rule=rule_to_proto(created))

    async def ListSopRules(self, request, context):
        page = await sop.list_rules(page_request_of(request.page), **self._read())
        return pb.ListSopRulesResponse(rules=[rule_to_proto(r) for r in page.items],
                                       page=page_info_of(page))

    async def SetSopRuleActive(self, request, context):
        rule = await sop.set_rule_active(request.id, request.active,
                                         expected_version=request.expected_version,
                                         **self._read())
        return pb.SetSopRuleActiveResponse(rule=rule_to_proto(rule))

    async def ListTasks(self, request, context):
        status = PROTO_TO_STATUS.get(request.status)
        requested = page_request_of(request.page)
        page = await sop.list_tasks(
            requested, mine=request.mine, assignee_user_id=request.assignee_user_id,
            dealer_id=request.dealer_id, status=status.value if status else "",
            overdue_only=request.overdue_only, rule_id=request.rule_id,
            **self._read(scopes=self.deps.scopes))
        return pb.ListTasksResponse(tasks=[task_to_proto(t) for t in page.items],
                                    page=page_info_of(page))

    async def GetSopExecution(self, request, context):
        rows = await sop.execution_view(GROUPINGS.get(request.group_by, ""),
                                        **self._read(scopes=self.deps.scopes,
                                                     clock=self.deps.clock))
        return pb.GetSopExecutionResponse(rows=[execution_row_to_proto(r) for r in rows])

    # ---------------------------------------------------------------------- health
    async def GetHealthPolicy(self, request, context):
        policy = await health.get_policy(**self._read())
        return pb.GetHealthPolicyResponse(policy=policy_to_proto(policy))

    async def SetHealthPolicy(self, request, context):
        policy = await health.set_policy(policy_from_proto(request.policy), **self._read())
        return pb.SetHealthPolicyResponse(policy=policy_to_proto(policy))

    async def ListDealerHealth(self, request, context):
        page = await health.list_health(
            page_request_of(request.page), manager_user_id=request.manager_user_id,
            status=HEALTH_NAMES.get(request.status, ""),
            **self._read(scopes=self.deps.scopes, clock=self.deps.clock))
        return pb.ListDealerHealthResponse(dealers=[health_to_proto(h) for h in page.items],
                                           page=page_info_of(page))

    async def GetDealerHealth(self, request, context):
        found = await health.get_health(request.dealer_id, **self._read(
            scopes=self.deps.scopes, clock=self.deps.clock))
        return pb.GetDealerHealthResponse(health=health_to_proto(found))

    # ----------------------------------------------------------------------- inbox
    async def ListInbox(self, request, context):
        page, unread = await inbox.list_inbox(request.unread_only, page_request_of(request.page),
                                              **self._read())
        return pb.ListInboxResponse(items=[inbox_item_to_proto(i) for i in page.items],
                                    page=page_info_of(page), unread_count=unread)

    async def MarkInboxRead(self, request, context):
        marked, unread = await inbox.mark_read(list(request.ids), request.all,
                                               **self._read(clock=self.deps.clock))
        return pb.MarkInboxReadResponse(marked=marked, unread_count=unread)
