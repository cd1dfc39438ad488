"""HQ's and the channel manager's console in a real browser, on a desktop: the channel
manager approves a registration and an order; HQ decides a conflict with both sides'
evidence, reads the dashboard, sees a bulk import's row errors; every console page
renders with real data and no error."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import shoot
from tests.browser.world import HUASHAN
from tests.harness import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_channel_manager_approves_a_registration_and_an_order(world, portal):
    dealer, other = world.dealers[0], world.dealers[1]
    order = await world.order(dealer, "PO-KJ-0100", {"A-001": 40, "A-002": 100})
    assert order["awaiting_approval"] == "channel_manager", order
    first_hospital = {"name": "上海市第一人民医院", "address": "上海市虹口区海宁路100号"}
    pending = await world.register(other, first_hospital, "reg-first")
    assert pending["status"] == "submitted", pending

    page = await portal.open(world.manager.username, phone=False)
    await expect(page.get_by_test_id("dashboard")).to_be_visible()
    await expect(page.get_by_test_id("kpi-orders")).to_contain_text("1")
    await page.get_by_role("link", name="报备审批").click()
    queue = page.get_by_test_id("registration-approvals")
    row = queue.locator(".el-table__row").filter(has_text="上海市第一人民医院")
    await expect(row).to_contain_text(other.name)
    await expect(row).to_contain_text("无相似客户")
    await shoot(page, "registration-approvals")
    await row.get_by_test_id("approve").click()
    await expect(page.locator(".el-message--success")).to_contain_text("已通过")
    await expect(row).to_have_count(0)

    await page.get_by_role("link", name="订单审批").click()
    queue = page.get_by_test_id("order-approvals")
    row = queue.locator(".el-table__row").filter(has_text="PO-KJ-0100")
    await expect(row).to_contain_text(dealer.name)
    await expect(row).to_contain_text("¥7,920.00")
    await row.locator(".el-table__expand-icon").click()
    await expect(queue.locator(".el-table__expanded-cell")).to_contain_text("¥3,420.00")
    await shoot(page, "order-approvals")
    phone = await portal.open(world.manager.username, phone=True)
    await phone.goto("/console/approvals/orders")
    await expect(phone.get_by_test_id("order-approvals")).to_contain_text("PO-KJ-0100")
    await shoot(phone, "order-approvals")
    await row.get_by_test_id("approve").click()
    await expect(page.locator(".el-message--success")).to_contain_text("已通过")

    decided = await world.call(dealer.staff.token, "GET", f"/api/v1/orders/{order['id']}")
    assert decided["awaiting_approval"] == "finance"
    approved = await world.call(other.staff.token, "GET", f"/api/v1/registrations/{pending['id']}")
    assert approved["status"] == "approved"


async def test_hq_decides_a_conflict_and_reads_the_dashboard(world, portal):
    holder, challenger = world.dealers[0], world.dealers[2]
    held = await world.register(holder, HUASHAN, "reg-huashan")
    await world.call(world.manager.token, "POST", f"/api/v1/registrations/{held['id']}/approve",
                     json={})

    # Its core name in another district: a possible duplicate for HQ to decide (in the
    # same district it would be the same customer).
    lookalike = {"name": "华山医院", "address": "上海市长宁区华山路"}

    async def indexed():
        check = await world.call(challenger.staff.token, "POST",
                                 "/api/v1/customers/check-duplicates", json=lookalike)
        return check["verdict"] == "possible_duplicate"

    await eventually(indexed)
    review = await world.register(challenger, lookalike, "reg-huashan-2")
    assert review["status"] == "under_review", review
    page = await portal.open("admin", phone=False)
    await page.get_by_role("link", name="撞单仲裁").click()
    queue = page.get_by_test_id("conflicts")
    row = queue.locator(".el-table__row").filter(has_text="华山")
    await expect(row).to_contain_text(holder.name)
    await expect(row).to_contain_text(challenger.name)
    await row.locator(".el-table__expand-icon").click()
    claims = queue.get_by_test_id("conflict-claim")
    await expect(claims).to_have_count(2)
    def side(dealer):
        return claims.filter(has=page.locator(".el-card__header", has_text=dealer.name))

    first = side(holder)
    await expect(first).to_contain_text("复旦大学附属华山医院")
    # The challenger's side shows the evidence: the holder's claim, by name, for HQ.
    await expect(side(challenger)).to_contain_text("名称相似")
    await expect(side(challenger)).to_contain_text(holder.name)
    await shoot(page, "conflict")
    await first.get_by_test_id("award").click()
    await page.locator(".el-message-box input").fill("先报备且已获批，保护期内")
    await page.locator(".el-message-box__btns .el-button--primary").click()
    await expect(page.locator(".el-message--success")).to_contain_text("已裁定")

    lost = await world.call(world.admin_token, "GET", f"/api/v1/registrations/{review['id']}")
    assert lost["status"] == "rejected"

    await page.get_by_role("link", name="数据看板").click()
    funnel = page.get_by_test_id("chart-funnel")
    await expect(funnel.locator(".chart-canvas")).to_have_attribute("data-state", "ready")
    await expect(funnel.locator("canvas")).to_have_count(1)
    await expect(page.get_by_test_id("chart-dealer-pipeline").locator("canvas")).to_have_count(1)
    await expect(page.get_by_test_id("kpi-conflicts")).to_contain_text("0")
    await shoot(page, "dashboard")


async def test_dealer_import_shows_every_failing_row(world, portal, tmp_path):
    upload = tmp_path / "dealers.csv"
    upload.write_text(
        "name,credit_code,tier,region_code,division_codes,product_lines\n"
        "上海新康医疗器械有限公司,91310000MA1K000019,one,east,310000,A系列\n"
        "上海错码医疗有限公司,9131000012345,one,east,310000,A系列\n"
        "上海无级别医疗有限公司,91310000MA1K00003X,seven,east,310000,A系列\n", encoding="utf-8")
    page = await portal.open("admin", phone=False)
    await page.goto("/console/dealers")
    await expect(page.get_by_test_id("dealers").locator(".el-table__row")).to_have_count(3)
    await shoot(page, "dealers")
    await page.get_by_role("button", name="批量导入经销商").click()
    await page.locator(".el-upload input[type=file]").set_input_files(str(upload))
    await page.get_by_test_id("import-send").click()
    errors = page.get_by_test_id("import-errors")
    await expect(errors.locator(".el-table__row").first).to_be_visible()
    await expect(errors).to_contain_text("9131000012345")
    await expect(errors).to_contain_text("seven")
    await expect(errors).not_to_contain_text("上海新康医疗器械有限公司")
    await expect(page.get_by_role("dialog")).to_contain_text("未写入任何数据")
    await shoot(page, "dealer-import-errors", full_page=False)


CONSOLE_PAGES = [
    "dashboard", "dealers", "users", "assignments", "approvals/registrations",
    "approvals/orders", "approvals/returns", "conflicts", "registrations", "leads", "orders",
    "statements", "accounts", "discrepancies", "inventory", "products", "price-lists",
    "accruals", "audit", "notices", "materials", "material-usage", "flow-uploads",
    "diversions", "rebate-programs", "targets", "settlements",
]


async def test_every_console_page_renders_without_error(world, portal):
    page = await portal.open("admin", phone=False)
    for path in CONSOLE_PAGES:
        await page.goto(f"/console/{path}")
        await expect(page.locator(".el-main")).to_be_visible()
        await expect(page.locator(".el-loading-mask:visible")).to_have_count(0)
        await expect(page.get_by_role("alert")).to_have_count(0)
        await expect(page.locator(".el-main")).not_to_contain_text("enum.")
        await expect(page.locator(".el-main")).not_to_contain_text("undefined")
    await page.goto("/console/products")
    await expect(page.get_by_test_id("products")).to_contain_text("一次性使用输液器 带针")
    await shoot(page, "products")
    await page.goto("/console/audit")
    await expect(page.get_by_test_id("audit").locator(".el-table__row").first).to_be_visible()
    await shoot(page, "audit")
    await page.goto("/console/users")
    await expect(page.get_by_test_id("users")).to_contain_text("张伟")
    await shoot(page, "users")
    # Flow and rebate pages are in the menu now the gateway serves their API.
    for entry in ("流向上报", "窜货预警", "返利政策", "销售指标", "返利结算"):
        await expect(page.locator(".console-menu")).to_contain_text(entry)
