"""Follow-up SOP rules and their tasks. A rule turns a trigger signal into a task with
a deadline for a role; the task is done only when the closing signal about the same
subject arrives (never by ticking it off), and turns overdue (red) once its deadline
passes while open. Execution rates count tasks per rule, manager or dealer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.engagement.domain.signals import SIGNALS, Signal
from shared.errors import FieldViolation, collect

MAX_DEADLINE_MINUTES = 366 * 24 * 60


class AssigneeRole(StrEnum):
    DEALER = "dealer"
    CHANNEL_MANAGER = "channel_manager"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


@dataclass(frozen=True)
class SopRule:
    id: str
    name: str
    trigger: str
    closing: str
    deadline_minutes: int
    assignee_role: AssigneeRole
    active: bool = True
    created_at: datetime | None = None
    # Increases with every switch (the REST API's ETag).
    version: int = 1

    @property
    def deadline(self) -> timedelta:
        return timedelta(minutes=self.deadline_minutes)


def validate_rule(rule: SopRule) -> None:
    """Every problem of a rule at once, each naming its field."""
    problems = []
    known = ", ".join(sorted(SIGNALS))
    if not rule.name.strip():
        problems.append(FieldViolation("rule.name", "is required"))
    elif len(rule.name) > 200:
        problems.append(FieldViolation("rule.name", "must be at most 200 characters"))
    if rule.trigger not in SIGNALS:
        problems.append(FieldViolation("rule.trigger", f"must be one of {known}"))
    if rule.closing not in SIGNALS:
        problems.append(FieldViolation("rule.closing", f"must be one of {known}"))
    elif rule.closing == rule.trigger:
        problems.append(FieldViolation("rule.closing", "must differ from the trigger"))
    elif rule.trigger in SIGNALS and _about(rule.closing) != _about(rule.trigger):
        # A task is matched to its closing signal by the subject's id: both must be
        # about the same kind of thing.
        problems.append(FieldViolation(
            "rule.closing", f"must be about the same kind of thing as the trigger "
                            f"({_about(rule.trigger)})"))
    if not 1 <= rule.deadline_minutes <= MAX_DEADLINE_MINUTES:
        problems.append(FieldViolation("rule.deadline_minutes",
                                       f"must be between 1 and {MAX_DEADLINE_MINUTES}"))
    collect(problems)


def _about(signal: str) -> str:
    return signal.partition(".")[0]


@dataclass(frozen=True)
class Task:
    id: str
    rule_id: str
    rule_name: str
    subject_id: str
    dealer_id: str
    assignee_role: AssigneeRole
    assignee_user_id: str
    manager_user_id: str
    opened_at: datetime
    due_at: datetime
    status: TaskStatus = TaskStatus.OPEN
    overdue: bool = False
    closed_at: datetime | None = None
    trigger_event_id: str = ""

    @property
    def on_time(self) -> bool:
        return self.status is TaskStatus.DONE and self.closed_at <= self.due_at

    def is_late(self, now: datetime) -> bool:
        return self.status is TaskStatus.OPEN and now > self.due_at

    def closed(self, at: datetime) -> Task:
        return replace(self, status=TaskStatus.DONE, closed_at=at,
                       overdue=self.overdue or at > self.due_at)

    def marked_overdue(self) -> Task:
        return replace(self, overdue=True)


def open_task(rule: SopRule, signal: Signal, *, task_id: str, assignee_user_id: str,
              manager_user_id: str) -> Task:
    return Task(task_id, rule.id, rule.name, signal.subject_id, signal.dealer_id,
                rule.assignee_role, assignee_user_id, manager_user_id,
                opened_at=signal.occurred_at, due_at=signal.occurred_at + rule.deadline,
                trigger_event_id=signal.event_id)


@dataclass(frozen=True)
class ExecutionRow:
    key: str
    label: str
    total: int = 0
    done: int = 0
    done_on_time: int = 0
    open: int = 0
    open_overdue: int = 0

    @property
    def completion_bps(self) -> int:
        return self.done * 10_000 // self.total if self.total else 0

    @property
    def on_time_bps(self) -> int:
        return self.done_on_time * 10_000 // self.done if self.done else 0


def execution(tasks: Iterable[Task], key_of, label_of, now: datetime) -> list[ExecutionRow]:
    """Completion and on-time counts of ``tasks`` grouped by ``key_of(task)``, worst
    on-time rate first. An open task past its deadline counts as overdue even before
    the sweep marked it."""
    counts: dict[str, dict[str, int]] = {}
    for task in tasks:
        row = counts.setdefault(key_of(task), dict.fromkeys(
            ("total", "done", "done_on_time", "open", "open_overdue"), 0))
        row["total"] += 1
        if task.status is TaskStatus.DONE:
            row["done"] += 1
            row["done_on_time"] += task.on_time
        else:
            row["open"] += 1
            row["open_overdue"] += task.overdue or task.is_late(now)
    rows = [ExecutionRow(key, label_of(key), **row) for key, row in counts.items()]
    return sorted(rows, key=lambda row: (row.on_time_bps - 10_000 * (row.done == 0),
                                         row.completion_bps, row.key))
