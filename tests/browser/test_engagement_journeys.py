"""Engagement in a real browser: the dealer's phone shows the unread badge on its inbox
tab and the notice of an approved registration, reads them all and the badge goes; the
channel manager's console shows the held-order task an SOP rule opened, the SOP
execution view, dealer health riskiest first and the inbox with its badge."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import shoot
from tests.browser.world import ZHONGSHAN
from tests.harness import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")
# The machine is shared: give each expectation more than Playwright's 5 s.
expect.set_options(timeout=20_000)
RULE = {"name": "暂挂订单当天处理", "trigger": "order.held", "closing": "order.decided",
        "deadline_minutes": 480, "assignee_role": "channel_manager"}


async def _inbox_of(world, token: str, kind: str) -> list[dict]:
    body = await world.call(token, "GET", "/api/v1/inbox", params={"page_size": 100})
    return [item for item in body["items"] if item["kind"] == kind]


async def test_inbox_badge_tasks_execution_and_health(world, portal):
    dealer = world.dealers[0]
    manager = world.manager
    await world.call(world.admin_token, "POST", "/api/v1/sop-rules", json=RULE)
    order = await world.order(dealer, "PO-SOP-0001", {"A-001": 40})
    assert order["awaiting_approval"] == "channel_manager", order
    registration = await world.register(dealer, ZHONGSHAN, "reg-engagement")
    await world.call(manager.token, "POST",
                     f"/api/v1/registrations/{registration['id']}/approve", json={})
    await eventually(lambda: _inbox_of(world, dealer.staff.token, "registration.approved"),
                     timeout=20)
    await eventually(lambda: _inbox_of(world, manager.token, "order.held"), timeout=20)

    # The dealer's phone: a badge on the inbox tab, the notice, then all read.
    page = await portal.open(dealer.staff.username, phone=True)
    tab = page.get_by_test_id("tab-inbox")
    await expect(tab.locator(".van-badge")).to_have_text("1")
    await tab.click()
    item = page.get_by_test_id("inbox-item").filter(has_text="报备已通过")
    await expect(item).to_be_visible()
    await expect(page.get_by_test_id("inbox-unread")).to_have_text("1 条未读")
    await shoot(page, "inbox")
    await page.get_by_test_id("inbox-read-all").click()
    await expect(page.get_by_test_id("inbox-unread")).to_have_text("0 条未读")
    await expect(tab.locator(".van-badge")).to_have_count(0)
    await page.goto("/m/tasks")
    await expect(page.get_by_test_id("tasks")).to_be_visible()

    # The channel manager's console: the held order is their task, due today.
    console = await portal.open(manager.username, phone=False)
    await expect(console.get_by_test_id("inbox-badge")).to_be_visible()
    await console.get_by_role("link", name="跟进任务").click()
    row = console.get_by_test_id("tasks").locator(".el-table__row").filter(
        has_text="暂挂订单当天处理")
    await expect(row).to_contain_text(dealer.name)
    await expect(row.get_by_test_id("task-state")).to_have_text("进行中")
    await shoot(console, "tasks")
    await console.get_by_role("link", name="SOP 执行情况").click()
    rule_row = console.get_by_test_id("sop-execution").locator(".el-table__row").filter(
        has_text="暂挂订单当天处理")
    await expect(rule_row).to_contain_text("0.00%")
    await shoot(console, "sop-execution")
    await console.get_by_role("link", name="经销商健康度").click()
    health = console.get_by_test_id("dealer-health")
    await expect(health.locator(".el-table__row")).to_have_count(len(world.dealers))
    await shoot(console, "dealer-health")
    await console.get_by_role("link", name="消息").click()
    held = console.get_by_test_id("console-inbox").locator(".el-table__row").filter(
        has_text="订单待审批")
    await expect(held).to_contain_text("PO-SOP-0001")
    await console.get_by_test_id("inbox-read-all").click()
    await expect(console.get_by_test_id("inbox-badge")).to_have_count(0)

    # HQ's rules page names the signals in words; stopping a rule is one click.
    hq = await portal.open("admin", phone=False)
    await hq.goto("/console/sop-rules")
    rule_row = hq.get_by_test_id("sop-rules").locator(".el-table__row").filter(
        has_text="暂挂订单当天处理")
    await expect(rule_row).to_contain_text("订单待渠道经理审批")
    await expect(rule_row).to_contain_text("8 小时")
    await shoot(hq, "sop-rules")
    await rule_row.get_by_role("button", name="停用").click()
    await expect(hq.locator(".el-message--success")).to_contain_text("规则已停用")
    await expect(rule_row.get_by_role("button", name="启用")).to_be_visible()

    # Every engagement page renders for HQ, with no raw translation key and no error.
    for path in ("inbox", "tasks", "sop-rules", "sop-execution", "dealer-health"):
        await hq.goto(f"/console/{path}")
        main = hq.locator(".el-main")
        await expect(main).to_be_visible()
        await expect(hq.locator(".el-loading-mask:visible")).to_have_count(0)
        await expect(hq.get_by_role("alert")).to_have_count(0)
        for raw in ("undefined", "sop.", "task.", "health.", "execution.", "inbox."):
            await expect(main).not_to_contain_text(raw)
