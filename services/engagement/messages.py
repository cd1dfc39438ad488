"""The engagement service's domain objects as protobuf messages: its responses (api/)
and its event payloads (recorded by the use cases), and back where a request carries a
domain value. The one place domain ↔ protobuf is written."""

from __future__ import annotations

from qudao.engagement.v1 import engagement_pb2 as pb
from qudao.engagement.v1 import events_pb2

from services.engagement.domain.health import Health, HealthPolicy, HealthStatus
from services.engagement.domain.inbox import InboxItem
from services.engagement.domain.sop import AssigneeRole, ExecutionRow, SopRule, Task, TaskStatus
from shared.convert import to_timestamp

ROLE_TO_PROTO = {AssigneeRole.DEALER: pb.ASSIGNEE_ROLE_DEALER,
                 AssigneeRole.CHANNEL_MANAGER: pb.ASSIGNEE_ROLE_CHANNEL_MANAGER}
PROTO_TO_ROLE = {number: role for role, number in ROLE_TO_PROTO.items()}
STATUS_TO_PROTO = {TaskStatus.OPEN: pb.TASK_STATUS_OPEN, TaskStatus.DONE: pb.TASK_STATUS_DONE}
PROTO_TO_STATUS = {number: status for status, number in STATUS_TO_PROTO.items()}
HEALTH_TO_PROTO = {HealthStatus.HEALTHY: pb.HEALTH_STATUS_HEALTHY,
                   HealthStatus.AT_RISK: pb.HEALTH_STATUS_AT_RISK,
                   HealthStatus.INACTIVE: pb.HEALTH_STATUS_INACTIVE}
PROTO_TO_HEALTH = {number: status for status, number in HEALTH_TO_PROTO.items()}


def rule_to_proto(rule: SopRule) -> pb.SopRule:
    return pb.SopRule(id=rule.id, name=rule.name, trigger=rule.trigger, closing=rule.closing,
                      deadline_minutes=rule.deadline_minutes,
                      assignee_role=ROLE_TO_PROTO[rule.assignee_role], active=rule.active,
                      created_at=to_timestamp(rule.created_at), version=rule.version)


def task_to_proto(task: Task) -> pb.Task:
    return pb.Task(
        id=task.id, rule_id=task.rule_id, rule_name=task.rule_name, subject_id=task.subject_id,
        dealer_id=task.dealer_id, assignee_role=ROLE_TO_PROTO[task.assignee_role],
        assignee_user_id=task.assignee_user_id, manager_user_id=task.manager_user_id,
        status=STATUS_TO_PROTO[task.status], overdue=task.overdue,
        opened_at=to_timestamp(task.opened_at), due_at=to_timestamp(task.due_at),
        closed_at=to_timestamp(task.closed_at), on_time=task.on_time)


def execution_row_to_proto(row: ExecutionRow) -> pb.ExecutionRow:
    return pb.ExecutionRow(key=row.key, label=row.label, total=row.total, done=row.done,
                           done_on_time=row.done_on_time, open=row.open,
                           open_overdue=row.open_overdue, completion_bps=row.completion_bps,
                           on_time_bps=row.on_time_bps)


def policy_to_proto(policy: HealthPolicy) -> pb.HealthPolicy:
    return pb.HealthPolicy(
        max_days_without_order=policy.max_days_without_order,
        require_flow_for_last_closed_month=policy.require_flow_for_last_closed_month,
        flow_upload_grace_days=policy.flow_upload_grace_days,
        max_days_without_login=policy.max_days_without_login,
        statement_confirm_days=policy.statement_confirm_days,
        expiring_notice_days=policy.expiring_notice_days)


def policy_from_proto(message: pb.HealthPolicy) -> HealthPolicy:
    return HealthPolicy(
        max_days_without_order=message.max_days_without_order,
        require_flow_for_last_closed_month=message.require_flow_for_last_closed_month,
        flow_upload_grace_days=message.flow_upload_grace_days,
        max_days_without_login=message.max_days_without_login,
        statement_confirm_days=message.statement_confirm_days,
        expiring_notice_days=message.expiring_notice_days)


def health_to_proto(health: Health) -> pb.DealerHealth:
    facts = health.facts
    return pb.DealerHealth(
        dealer_id=facts.dealer_id, dealer_name=facts.name,
        manager_user_ids=list(facts.manager_user_ids),
        last_login_at=to_timestamp(facts.last_login_at),
        last_order_at=to_timestamp(facts.last_order_at),
        last_flow_upload_at=to_timestamp(facts.last_flow_upload_at),
        flow_covered_until=facts.flow_covered_until.isoformat()
        if facts.flow_covered_until else "",
        open_registrations=facts.open_registrations,
        overdue_statements=health.overdue_statements,
        status=HEALTH_TO_PROTO[health.status], risk_score=health.risk_score,
        reasons=list(health.reasons))


def inbox_item_to_proto(item: InboxItem) -> pb.InboxItem:
    return pb.InboxItem(id=item.id, kind=item.kind, title=item.title, body=item.body,
                        ref_type=item.ref_type, ref_id=item.ref_id, dealer_id=item.dealer_id,
                        created_at=to_timestamp(item.created_at),
                        read_at=to_timestamp(item.read_at), read=item.read)


def task_opened(task: Task) -> events_pb2.TaskOpened:
    return events_pb2.TaskOpened(task=task_to_proto(task))


def task_closed(task: Task) -> events_pb2.TaskClosed:
    return events_pb2.TaskClosed(task=task_to_proto(task))


def task_overdue(task: Task, supervisors: tuple[str, ...]) -> events_pb2.TaskOverdue:
    return events_pb2.TaskOverdue(task=task_to_proto(task), supervisor_user_ids=supervisors)


def dealer_at_risk(health: Health) -> events_pb2.DealerAtRisk:
    return events_pb2.DealerAtRisk(health=health_to_proto(health))
