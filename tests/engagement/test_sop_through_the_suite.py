"""Engagement through the real suite (NATS, databases, gRPC, the gateway): an approved
registration opens the dealer's follow-up task, the visit note registration publishes
closes it, and once the engagement clock passes a deadline the task turns red and the
dealer's channel manager finds it in the inbox; the dealer's inbox and health come from
the same events."""

from __future__ import annotations

import pytest

from tests.conftest import require_postgres
from tests.engagement.support import engagement_on_a_clock, get_json, wait_for
from tests.harness import Suite
from tests.registration.helpers import ZHONGSHAN, channel_manager, hospital_code
from tests.world import build_world

RUIJIN = {"name": "上海交通大学医学院附属瑞金医院", "address": "上海市黄浦区瑞金二路197号",
          "grade": "三级甲等", "departments": ["心内科"], "credit_code": hospital_code(2)}


async def _approved_registration(dealer, manager, customer: dict) -> dict:
    response = await dealer.post("/api/v1/registrations", json={
        "product_line": "A系列", "customer": customer, "department": "心内科"})
    assert response.status_code == 201, response.text
    registration = response.json()
    response = await manager.post(f"/api/v1/registrations/{registration['id']}/approve",
                                  json={"comment": "同意"})
    assert response.status_code == 200, response.text
    return registration


def _task_about(subject_id: str, **expected):
    def found(body):
        for task in body["tasks"]:
            if task["subject_id"] == subject_id and all(
                    task[k] == v for k, v in expected.items()):
                return task
        return None
    return found


async def test_a_registration_opens_a_visit_task_its_note_closes_and_lateness_escalates(
        suite, world):
    await visit_task_story(suite, world)


@pytest.mark.postgres
async def test_the_visit_task_story_on_postgres(tmp_path):
    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        await visit_task_story(suite, await build_world(suite))
    finally:
        await suite.stop()


async def visit_task_story(suite, world):
    clock = await engagement_on_a_clock(suite)
    manager_id, manager_token = await channel_manager(suite, world)
    dealer = world.dealers[0]
    async with suite.client(world.admin_token) as admin:
        response = await admin.post("/api/v1/sop-rules", json={
            "name": "新报备7天内首次拜访", "trigger": "registration.approved",
            "closing": "registration.note_added", "deadline_minutes": 7 * 24 * 60,
            "assignee_role": "dealer"})
        assert response.status_code == 201, response.text
        rule = response.json()
        assert (rule["trigger"], rule["assignee_role"], rule["active"]) == (
            "registration.approved", "dealer", True)
        refused = await admin.post("/api/v1/sop-rules", json={
            "name": "x", "trigger": "registration.approvd", "closing": "registration.note_added",
            "deadline_minutes": 60, "assignee_role": "dealer"})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["field"] == "rule.trigger"

    async with suite.client(dealer.token) as staff, suite.client(manager_token) as manager:
        first = await _approved_registration(
            staff, manager, {**ZHONGSHAN, "credit_code": hospital_code(1)})
        task = await wait_for(suite, dealer.token, "/api/v1/tasks",
                              _task_about(first["id"]), mine="true")
        assert (task["status"], task["overdue"], task["dealer_id"]) == ("open", False, dealer.id)
        assert task["manager_user_id"] == manager_id

        # The visit note closes it: nobody ticks it off.
        response = await staff.post(f"/api/v1/registrations/{first['id']}/notes",
                                    json={"text": "拜访心内科主任"})
        assert response.status_code in (200, 201), response.text
        done = await wait_for(suite, dealer.token, "/api/v1/tasks",
                              _task_about(first["id"], status="done"), mine="true")
        assert done["on_time"] is True

        second = await _approved_registration(staff, manager, RUIJIN)
        await wait_for(suite, dealer.token, "/api/v1/tasks", _task_about(second["id"]),
                       mine="true")

    # Eight days later (on the engagement clock) nobody has visited: red, and the
    # dealer's channel manager is told.
    clock.advance(days=8)
    late = await wait_for(suite, dealer.token, "/api/v1/tasks",
                          _task_about(second["id"], overdue=True), mine="true")
    assert late["status"] == "open"

    def overdue_item(body):
        return next((i for i in body["items"] if i["kind"] == "task.overdue"), None)

    item = await wait_for(suite, manager_token, "/api/v1/inbox", overdue_item)
    assert item["ref_id"] == late["id"] and item["read"] is False
    assert "新报备7天内首次拜访" in item["title"]
    inbox = await get_json(suite, manager_token, "/api/v1/inbox", unread_only="true")
    assert inbox["unread_count"] >= 1
    async with suite.client(manager_token) as manager:
        response = await manager.post("/api/v1/inbox/read", json={"ids": [item["id"]]})
        assert response.status_code == 200, response.text
        assert response.json()["marked"] == 1
    # The dealer cannot see, let alone mark, the manager's item.
    async with suite.client(dealer.token) as staff:
        response = await staff.post("/api/v1/inbox/read", json={"ids": [item["id"]]})
        assert response.status_code == 404
    mine = await get_json(suite, dealer.token, "/api/v1/inbox")
    assert item["id"] not in {i["id"] for i in mine["items"]}
    # The dealer heard of both approvals (registration's DealerNotified).
    approved = [i for i in mine["items"] if i["kind"] == "registration.approved"]
    assert sorted(i["ref_id"] for i in approved) == sorted([first["id"], second["id"]])

    execution = await get_json(suite, world.admin_token, "/api/v1/sop-execution",
                               group_by="rule")
    (row,) = execution["rows"]
    assert (row["total"], row["done"], row["done_on_time"], row["open_overdue"]) == (2, 1, 1, 1)
    assert (row["completion_bps"], row["on_time_bps"]) == (5000, 10000)

    # Health from the same events: the dealer logged in, has two open registrations and
    # no order, so eight days on it is still healthy, then at risk past thirty.
    # The login event comes through identity's outbox: wait until engagement has it.
    health = await wait_for(
        suite, dealer.token, f"/api/v1/dealers/{dealer.id}/health",
        lambda body: body if body["last_login_at"] and body["open_registrations"] == 2
        else None)
    assert health["last_order_at"] is None
    clock.advance(days=30)
    flagged = await wait_for(suite, manager_token, "/api/v1/inbox",
                             lambda body: next((i for i in body["items"]
                                                if i["kind"] == "dealer.at_risk"
                                                and i["ref_id"] == dealer.id), None))
    assert dealer.id in flagged["ref_id"]
    listed = await get_json(suite, manager_token, "/api/v1/dealer-health",
                            manager_user_id=manager_id)
    assert listed["dealers"][0]["status"] in ("at_risk", "inactive")
    assert {d["dealer_id"] for d in listed["dealers"]} == {d.id for d in world.dealers}
