"""Follow-up SOPs: HQ's rules, the tasks signals open and close, the sweep that turns
late tasks red and tells the supervisors, and the views of tasks and execution."""

from __future__ import annotations

from dataclasses import replace

from services.engagement import messages
from services.engagement.domain.inbox import Notice
from services.engagement.domain.people import assignee_of, supervisors_of
from services.engagement.domain.signals import Signal
from services.engagement.domain.sop import (
    ExecutionRow,
    SopRule,
    Task,
    TaskStatus,
    execution,
    open_task,
    validate_rule,
)
from services.engagement.usecases import access, inbox
from services.engagement.usecases.directory import directory_of
from services.engagement.usecases.ports import EngagementUnitOfWork, TaskFilter
from shared.clock import Clock
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied, check_version
from shared.events.engagement import TASK_CLOSED, TASK_OPENED, TASK_OVERDUE
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes

SWEEP_BATCH = 200
GROUPINGS = ("rule", "manager", "dealer")


async def create_rule(rule: SopRule, *, who: Principal, uow: EngagementUnitOfWork,
                      clock: Clock, ids: IdSource) -> SopRule:
    access.require(who, access.CONFIGURERS, "defining SOP rules")
    validate_rule(rule)
    created = SopRule(ids.new_id(), rule.name.strip(), rule.trigger, rule.closing,
                      rule.deadline_minutes, rule.assignee_role, True, clock.now())
    async with uow:
        await uow.rules.add(created)
        await uow.commit()
    return created


async def set_rule_active(rule_id: str, active: bool, *, who: Principal,
                          uow: EngagementUnitOfWork, expected_version: int = 0) -> SopRule:
    """Stop a rule opening tasks (those it opened still close on their events), or
    resume it; refused (StaleVersion) when the rule is no longer at ``expected_version``
    (If-Match; 0: none)."""
    access.require(who, access.CONFIGURERS, "switching SOP rules")
    async with uow:
        rule = await uow.rules.get(rule_id) if rule_id else None
        if rule is None:
            raise NotFound(f"SOP rule {rule_id} not found")
        check_version(f"SOP rule {rule_id}", expected_version, rule.version)
        version = await uow.rules.set_active(rule, active)
        await uow.commit()
    return replace(rule, active=active, version=version)


async def list_rules(page: PageRequest, *, who: Principal,
                     uow: EngagementUnitOfWork) -> Page[SopRule]:
    access.require_staff(who, "SOP rules")
    async with uow.read():
        return await uow.rules.list(page)


async def observe(signals: list[Signal], *, uow: EngagementUnitOfWork, ids: IdSource) -> None:
    """Open the tasks the signals trigger and close the ones they complete (inside the
    consumer's transaction; a redelivered event opens nothing twice)."""
    async with uow:
        for signal in signals:
            for rule in await uow.rules.closed_by(signal.name):
                for task in await uow.tasks.open_about(signal.subject_id, [rule.id]):
                    done = task.closed(signal.occurred_at)
                    await uow.tasks.update(done)
                    uow.events.record(TASK_CLOSED, messages.task_closed(done), done.id)
            rules = await uow.rules.triggered_by(signal.name)
            if not rules or not signal.dealer_id:
                continue
            directory = await directory_of(signal.dealer_id, uow)
            for rule in rules:
                task = open_task(rule, signal, task_id=ids.new_id(),
                                 assignee_user_id=assignee_of(rule.assignee_role, directory),
                                 manager_user_id=directory.managers[0]
                                 if directory.managers else "")
                if await uow.tasks.add(task):
                    uow.events.record(TASK_OPENED, messages.task_opened(task), task.id)
        await uow.commit()


async def sweep_overdue(*, uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> dict:
    """Mark open tasks past their deadline overdue, once each, and tell the assignee's
    supervisors (an event and an inbox item)."""
    now = clock.now()
    async with uow:
        # Two replicas overlap during a rolling update: one sweep at a time tells once.
        if not await uow.exclusive("engagement.task_sweep"):
            return {"overdue": 0}
        late = await uow.tasks.due(now, SWEEP_BATCH)
        for task in late:
            red = task.marked_overdue()
            await uow.tasks.update(red)
            directory = await directory_of(task.dealer_id, uow)
            supervisors = supervisors_of(red, directory)
            uow.events.record(TASK_OVERDUE, messages.task_overdue(red, supervisors), red.id)
            names = await uow.directory.names({red.dealer_id})
            await inbox.deliver(Notice(
                "task.overdue", f"逾期任务：{red.rule_name}",
                f"{names.get(red.dealer_id, red.dealer_id)} 的任务「{red.rule_name}」"
                f"（{red.subject_id}）已于 {red.due_at:%Y-%m-%d %H:%M} UTC 到期仍未完成。",
                "task", red.id, red.dealer_id), supervisors, f"task.overdue:{red.id}",
                uow=uow, clock=clock, ids=ids)
        await uow.commit()
    return {"overdue": len(late)}


async def _filter(who: Principal, scopes: Scopes, uow: EngagementUnitOfWork, *, mine: bool,
                  assignee_user_id: str, dealer_id: str, status: str, overdue_only: bool,
                  rule_id: str) -> TaskFilter:
    """Which tasks a list shows: the dealers the caller sees (one asked-for dealer), and
    one person's tasks when asked — a channel manager's own, or, for a dealer's staff,
    their dealer's tasks for dealer staff."""
    if status and status not in {s.value for s in TaskStatus}:
        raise InvalidArgument.field("status", "must be open or done")
    if not who.user_id:
        raise PermissionDenied("tasks are for signed-in users")
    visible = access.visible(await access.scope_of(who, scopes), dealer_id)

    def of_dealer(staff_dealer: str) -> TaskFilter:
        own = frozenset({staff_dealer})
        return TaskFilter(own if visible is None else own & visible, "", True, status,
                          overdue_only, rule_id)

    if who.is_dealer_staff:
        if assignee_user_id and assignee_user_id != who.user_id:
            raise PermissionDenied("dealer staff see their own dealer's tasks only")
        if mine or assignee_user_id:
            return of_dealer(who.dealer_id)
        return TaskFilter(visible, "", True, status, overdue_only, rule_id)
    person = who.user_id if mine else assignee_user_id
    known = await uow.directory.person(person) if person else None
    if known is not None and known.dealer_id:
        return of_dealer(known.dealer_id)
    return TaskFilter(visible, person, False, status, overdue_only, rule_id)


async def list_tasks(page: PageRequest, *, mine: bool = False, assignee_user_id: str = "",
                     dealer_id: str = "", status: str = "", overdue_only: bool = False,
                     rule_id: str = "", who: Principal, uow: EngagementUnitOfWork,
                     scopes: Scopes) -> Page[Task]:
    """A person's, a dealer's or every visible task, open and overdue first."""
    async with uow.read():
        where = await _filter(who, scopes, uow, mine=mine, assignee_user_id=assignee_user_id,
                              dealer_id=dealer_id, status=status, overdue_only=overdue_only,
                              rule_id=rule_id)
        return await uow.tasks.list(where, page)


async def execution_view(group_by: str, *, who: Principal, uow: EngagementUnitOfWork,
                         scopes: Scopes, clock: Clock) -> list[ExecutionRow]:
    """Completion and on-time rates per rule, manager or dealer, over the tasks of the
    dealers the caller sees."""
    access.require_staff(who, "the SOP execution view")
    if group_by not in GROUPINGS:
        raise InvalidArgument.field("group_by", f"must be one of {', '.join(GROUPINGS)}")
    scope = await access.scope_of(who, scopes)
    async with uow.read():
        tasks = await uow.tasks.matching(TaskFilter(access.visible(scope)))
        key_of = {"rule": lambda t: t.rule_id, "manager": lambda t: t.manager_user_id,
                  "dealer": lambda t: t.dealer_id}[group_by]
        keys = {key_of(task) for task in tasks}
        if group_by == "rule":
            labels = {task.rule_id: task.rule_name for task in tasks}
        else:
            labels = await uow.directory.names(keys)
    return execution(tasks, key_of, lambda key: labels.get(key, key or "—"), clock.now())
