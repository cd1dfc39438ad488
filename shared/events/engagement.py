"""Events published by engagement (payloads in protos/qudao/engagement/v1/events.proto)."""

from __future__ import annotations

from qudao.engagement.v1 import events_pb2 as pb

from shared.events.catalog import declare

TASK_OPENED = declare(
    "engagement", "task", "opened", pb.TaskOpened,
    "An SOP rule's trigger happened: a follow-up task with a deadline was opened.")
TASK_CLOSED = declare(
    "engagement", "task", "closed", pb.TaskClosed,
    "An SOP task's closing event arrived (on time or late).")
TASK_OVERDUE = declare(
    "engagement", "task", "overdue", pb.TaskOverdue,
    "An open SOP task passed its deadline; its assignee's supervisors were notified.")
DEALER_AT_RISK = declare(
    "engagement", "dealer", "at_risk", pb.DealerAtRisk,
    "A dealer's health turned at risk or inactive; its channel managers were notified.")
