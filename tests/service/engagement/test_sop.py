"""Follow-up SOPs on in-memory fakes: rules HQ defines, tasks their triggers open and
their closing events close, red tasks and the supervisors told, and the execution view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.engagement.domain.sop import AssigneeRole, SopRule, TaskStatus
from services.engagement.usecases import inbox, sop
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.engagement import TASK_CLOSED, TASK_OPENED, TASK_OVERDUE
from shared.pagination import PageRequest
from tests.service.engagement.support import (
    ADMIN,
    CM,
    EAST_STAFF,
    REGION,
    SOUTH_STAFF,
    add_rule,
    build_world,
    happen,
)

PAGE = PageRequest(size=50)


def tasks_of(deps):
    return sorted(deps.uow().tasks.tasks.values(), key=lambda t: (t.rule_name, t.subject_id))


async def sweep(deps):
    return await sop.sweep_overdue(uow=deps.uow(), clock=deps.clock, ids=deps.ids)


async def inbox_of(deps, who):
    principal = Principal(subject=f"user:{who}", user_id=who)
    page, _unread = await inbox.list_inbox(False, PAGE, who=principal, uow=deps.uow())
    return page.items


async def test_a_bad_rule_is_refused_naming_every_field():
    deps = await build_world()
    with pytest.raises(InvalidArgument) as refused:
        await sop.create_rule(SopRule("", " ", "lead.assined", "order.decided", 0,
                                      AssigneeRole.DEALER),
                              who=ADMIN, uow=deps.uow(), clock=deps.clock, ids=deps.ids)
    fields = {v.field for v in refused.value.violations}
    assert fields == {"rule.name", "rule.trigger", "rule.deadline_minutes"}
    with pytest.raises(InvalidArgument) as mismatched:
        await add_rule(deps, "跨类", "lead.assigned", "order.decided", 60)
    assert mismatched.value.violations[0].field == "rule.closing"
    assert deps.uow().rules.rules == {}


async def test_only_hq_admins_define_rules():
    deps = await build_world()
    for who in (CM, EAST_STAFF):
        with pytest.raises(PermissionDenied):
            await sop.create_rule(SopRule("", "x", "lead.assigned", "lead.claimed", 60,
                                          AssigneeRole.DEALER),
                                  who=who, uow=deps.uow(), clock=deps.clock, ids=deps.ids)


async def test_a_lead_is_contacted_within_an_hour_and_qualified_within_three_days():
    deps = await build_world()
    await add_rule(deps, "线索1小时内联系", "lead.assigned", "lead.claimed", 60)
    await add_rule(deps, "线索3天内确认需求", "lead.assigned", "lead.qualified", 3 * 24 * 60)
    await happen(deps, "lead.assigned", "lead-1", "east")
    contacted, qualified = tasks_of(deps)
    assert contacted.due_at == deps.clock.now() + timedelta(hours=1)
    assert qualified.due_at == deps.clock.now() + timedelta(days=3)
    assert contacted.dealer_id == "east" and contacted.manager_user_id == "cm"
    deps.clock.advance(minutes=40)
    await happen(deps, "lead.claimed", "lead-1")
    contacted, qualified = tasks_of(deps)
    assert contacted.status is TaskStatus.DONE and contacted.on_time
    assert qualified.status is TaskStatus.OPEN
    published = deps.uow().published
    assert len([p for p in published if p.event_type is TASK_OPENED]) == 2
    assert [p.payload.task.id for p in published if p.event_type is TASK_CLOSED] == [contacted.id]


async def test_a_stopped_rule_opens_nothing_but_its_open_tasks_still_close():
    deps = await build_world()
    rule = await add_rule(deps, "新报备7天内拜访", "registration.approved",
                          "registration.note_added", 7 * 24 * 60)
    await happen(deps, "registration.approved", "reg-1", "east")
    stopped = await sop.set_rule_active(rule.id, False, who=ADMIN, uow=deps.uow())
    assert stopped.active is False
    await happen(deps, "registration.approved", "reg-2", "east")
    await happen(deps, "registration.note_added", "reg-1")
    assert [(t.subject_id, t.status) for t in tasks_of(deps)] == [("reg-1", TaskStatus.DONE)]
    await sop.set_rule_active(rule.id, True, who=ADMIN, uow=deps.uow())
    await happen(deps, "registration.approved", "reg-3", "east")
    assert len(tasks_of(deps)) == 2
    with pytest.raises(PermissionDenied):
        await sop.set_rule_active(rule.id, False, who=CM, uow=deps.uow())
    with pytest.raises(NotFound):
        await sop.set_rule_active("nope", False, who=ADMIN, uow=deps.uow())


async def test_a_redelivered_trigger_opens_no_second_task():
    deps = await build_world()
    await add_rule(deps, "新报备7天内拜访", "registration.approved", "registration.note_added",
                   7 * 24 * 60)
    await happen(deps, "registration.approved", "reg-1", "east", event_id="e-1")
    await happen(deps, "registration.approved", "reg-1", "east", event_id="e-1")
    assert len(tasks_of(deps)) == 1


async def test_a_closing_event_about_another_subject_closes_nothing():
    deps = await build_world()
    await add_rule(deps, "新报备7天内拜访", "registration.approved", "registration.note_added",
                   7 * 24 * 60)
    await happen(deps, "registration.approved", "reg-1", "east")
    await happen(deps, "registration.note_added", "reg-2")
    assert tasks_of(deps)[0].status is TaskStatus.OPEN


async def test_a_held_order_is_the_channel_managers_task_the_same_day():
    deps = await build_world()
    await add_rule(deps, "暂挂订单当天处理", "order.held", "order.decided", 8 * 60,
                   AssigneeRole.CHANNEL_MANAGER)
    await happen(deps, "order.held", "order-1", "east")
    (task,) = tasks_of(deps)
    assert task.assignee_role is AssigneeRole.CHANNEL_MANAGER and task.assignee_user_id == "cm"
    page = await sop.list_tasks(PAGE, mine=True, who=CM, uow=deps.uow(), scopes=deps.scopes)
    assert [t.id for t in page.items] == [task.id]
    # The dealer's staff are not given their manager's task.
    page = await sop.list_tasks(PAGE, mine=True, who=EAST_STAFF, uow=deps.uow(),
                                scopes=deps.scopes)
    assert page.items == []


async def test_an_overdue_task_turns_red_once_and_tells_the_supervisor():
    deps = await build_world()
    await add_rule(deps, "线索1小时内联系", "lead.assigned", "lead.claimed", 60)
    await happen(deps, "lead.assigned", "lead-1", "east")
    deps.clock.advance(minutes=59)
    assert await sweep(deps) == {"overdue": 0}
    deps.clock.advance(minutes=2)
    assert await sweep(deps) == {"overdue": 1}
    assert await sweep(deps) == {"overdue": 0}
    (task,) = tasks_of(deps)
    assert task.overdue and task.status is TaskStatus.OPEN
    (told,) = deps.uow().published_of(TASK_OVERDUE)
    assert list(told.supervisor_user_ids) == ["cm"]
    (item,) = await inbox_of(deps, "cm")
    assert item.kind == "task.overdue" and item.ref_id == task.id and not item.read
    assert "上海东方医疗" in item.body
    # Done late: closed, still red, not on time.
    await happen(deps, "lead.claimed", "lead-1")
    (task,) = tasks_of(deps)
    assert task.status is TaskStatus.DONE and task.overdue and not task.on_time


async def test_a_channel_managers_overdue_task_goes_to_the_region_manager_else_hq():
    deps = await build_world()
    await add_rule(deps, "暂挂订单当天处理", "order.held", "order.decided", 60,
                   AssigneeRole.CHANNEL_MANAGER)
    await happen(deps, "order.held", "order-east", "east")
    await happen(deps, "order.held", "order-south", "south")
    deps.clock.advance(hours=2)
    await sweep(deps)
    told = {p.task.subject_id: list(p.supervisor_user_ids)
            for p in deps.uow().published_of(TASK_OVERDUE)}
    # East's region has a manager; south's has none, so HQ hears of it.
    assert told == {"order-east": ["rm"], "order-south": ["admin"]}
    assert [i.ref_type for i in await inbox_of(deps, "rm")] == ["task"]


async def test_dealer_staff_see_their_own_dealers_tasks_only():
    deps = await build_world()
    await add_rule(deps, "新报备7天内拜访", "registration.approved", "registration.note_added",
                   7 * 24 * 60)
    await happen(deps, "registration.approved", "reg-east", "east")
    await happen(deps, "registration.approved", "reg-south", "south")
    east = await sop.list_tasks(PAGE, mine=True, who=EAST_STAFF, uow=deps.uow(),
                                scopes=deps.scopes)
    assert [t.subject_id for t in east.items] == ["reg-east"]
    asked = await sop.list_tasks(PAGE, dealer_id="east", who=SOUTH_STAFF, uow=deps.uow(),
                                 scopes=deps.scopes)
    assert asked.items == []
    region = await sop.list_tasks(PAGE, who=REGION, uow=deps.uow(), scopes=deps.scopes)
    assert [t.subject_id for t in region.items] == ["reg-east"]
    # A person's tasks, asked by HQ: a dealer user's are their dealer's; a region manager
    # asking for a dealer outside the region finds none.
    person = await sop.list_tasks(PAGE, assignee_user_id="south-1", who=ADMIN, uow=deps.uow(),
                                  scopes=deps.scopes)
    assert [t.subject_id for t in person.items] == ["reg-south"]
    outside = await sop.list_tasks(PAGE, assignee_user_id="south-1", who=REGION,
                                   uow=deps.uow(), scopes=deps.scopes)
    assert outside.items == []
    with pytest.raises(PermissionDenied):
        await sop.list_tasks(PAGE, assignee_user_id="east-2", who=EAST_STAFF, uow=deps.uow(),
                             scopes=deps.scopes)
    with pytest.raises(InvalidArgument):
        await sop.list_tasks(PAGE, status="late", who=ADMIN, uow=deps.uow(), scopes=deps.scopes)


async def test_the_execution_view_rates_completion_and_punctuality():
    deps = await build_world()
    rule = await add_rule(deps, "新报备7天内拜访", "registration.approved",
                          "registration.note_added", 7 * 24 * 60)
    for n in range(4):
        await happen(deps, "registration.approved", f"reg-east-{n}", "east")
    await happen(deps, "registration.approved", "reg-south", "south")
    deps.clock.advance(days=2)
    await happen(deps, "registration.note_added", "reg-east-0")
    await happen(deps, "registration.note_added", "reg-east-1")
    deps.clock.advance(days=6)
    await happen(deps, "registration.note_added", "reg-east-2")  # late
    by_rule = await sop.execution_view("rule", who=ADMIN, uow=deps.uow(), scopes=deps.scopes,
                                       clock=deps.clock)
    (row,) = by_rule
    assert (row.key, row.label, row.total, row.done, row.done_on_time, row.open,
            row.open_overdue) == (rule.id, "新报备7天内拜访", 5, 3, 2, 2, 2)
    assert (row.completion_bps, row.on_time_bps) == (6000, 6666)
    by_dealer = {r.key: r for r in await sop.execution_view(
        "dealer", who=ADMIN, uow=deps.uow(), scopes=deps.scopes, clock=deps.clock)}
    assert by_dealer["east"].label == "上海东方医疗" and by_dealer["east"].total == 4
    assert by_dealer["south"].done == 0
    (manager,) = await sop.execution_view("manager", who=ADMIN, uow=deps.uow(),
                                          scopes=deps.scopes, clock=deps.clock)
    assert (manager.key, manager.label, manager.total) == ("cm", "王经理", 5)
    # The region manager's view counts only the dealers it sees.
    (east_only,) = await sop.execution_view("dealer", who=REGION, uow=deps.uow(),
                                            scopes=deps.scopes, clock=deps.clock)
    assert east_only.key == "east"
    with pytest.raises(PermissionDenied):
        await sop.execution_view("rule", who=EAST_STAFF, uow=deps.uow(), scopes=deps.scopes,
                                 clock=deps.clock)
    with pytest.raises(InvalidArgument):
        await sop.execution_view("week", who=ADMIN, uow=deps.uow(), scopes=deps.scopes,
                                 clock=deps.clock)
