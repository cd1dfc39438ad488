"""Sell-through and rebates in a real browser: a dealer uploads a flow file on the phone,
watches it validate, reads why rows failed and downloads the error report, fixes the
file and uploads it again until it is accepted; HQ creates a tiered rebate program in
the console and the dealer sees how many more units reach the next tier; HQ reads the
flow results and the dashboard, and confirms a diversion flow found; a dealer's flow
pages never show another dealer's uploads."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.browser.conftest import shoot
from tests.flow.support import caught_up
from tests.harness import eventually
from tests.order.support import Erp, shipment

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Goods arrive yesterday (UTC) and sell the same day, so no row is "in the future".
SOLD_ON = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
YEAR = date.fromisoformat(SOLD_ON).year
HEADER = ["销售日期", "医院名称", "科室", "产品编码", "批号", "数量", "金额"]
RUIJIN = {"name": "上海交通大学医学院附属瑞金医院", "division_code": "310101",
          "aliases": ["瑞金医院"], "departments": ["心内科"]}


def flow_file(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def csv_file(name: str, rows: list[list[str]]) -> dict:
    """A file as the browser's file chooser hands it over."""
    return {"name": name, "mimeType": "text/csv", "buffer": flow_file(rows)}


async def stock(world, dealer, shipment_id: str, quantity: int) -> None:
    """The dealer holds ``quantity`` boxes of A-001, batch B2611, shipped by the ERP."""
    await world.give_credit(dealer, 10_000_000)
    order = await world.order(dealer, f"PO-{shipment_id}", {"A-001": quantity})
    assert order["status"] == "approved", order
    erp = Erp(world.suite, world.erp_token)
    try:
        reply = await erp.ship([shipment(shipment_id, dealer.id, [
            {"order_id": order["id"], "order_line_no": 1, "product_code": "A-001",
             "quantity": quantity, "batch": "B2611"}], ship_date=SOLD_ON)])
        assert reply.summary.rejected == 0, reply
    finally:
        await erp.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def flow_world(world):
    """Ruijin hospital known to registration, and goods at two dealers: 瑞信 (which
    uploads in the browser) and 华泰 (whose sale of 8 boxes is uploaded through the API
    for the rebate journey)."""
    await world.call(world.admin_token, "POST", "/api/v1/customers", json=RUIJIN)
    await stock(world, world.dealers[1], "SHP-FLOW-RX", 20)
    await stock(world, world.dealers[2], "SHP-FLOW-HT", 20)
    await caught_up(world.suite)
    huatai = world.dealers[2]
    async with world.suite.client(huatai.staff.token) as client:
        response = await client.post(
            "/api/v1/flow/uploads", params={"filename": "华泰流向.csv"},
            content=flow_file([[SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "8", "800"]]),
            headers={"content-type": "text/csv"})
        assert response.status_code == 201, response.text
    path = f"/api/v1/flow/uploads/{response.json()['id']}"

    async def checked():
        upload = await world.call(huatai.staff.token, "GET", path)
        return upload if upload["status"] not in ("queued", "validating") else None

    done = await eventually(checked, timeout=60)
    assert done["status"] == "accepted", done
    return world


async def test_dealer_fixes_a_rejected_flow_file_until_it_is_accepted(flow_world, portal):
    world = flow_world
    page = await portal.open(world.dealers[1].staff.username, phone=True)
    await page.goto("/m/flow")
    chooser = page.get_by_test_id("flow-file").locator("input[type=file]")
    # Row 3 names a hospital nobody knows; row 4 sells more than ever reached the dealer.
    await chooser.set_input_files(csv_file("瑞信十一月流向.csv", [
        [SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "5", "500"],
        [SOLD_ON, "不存在的医院", "", "A-001", "B2611", "1", "100"],
        [SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "50", "5000"]]))
    current = page.get_by_test_id("flow-current")
    await expect(current).to_contain_text("未通过", timeout=30_000)
    await expect(page.get_by_test_id("flow-progress")).to_contain_text("100%")
    counts = page.get_by_test_id("flow-check-counts")
    await expect(counts).to_contain_text("医院 1")
    await expect(counts).to_contain_text("数量超出")
    errors = page.get_by_test_id("flow-errors")
    await expect(errors).to_contain_text("第 3 行")
    await expect(errors).to_contain_text("不存在的医院")
    await expect(errors).to_contain_text("第 4 行")
    await shoot(page, "flow-rejected")
    async with page.expect_download() as download:
        await page.get_by_test_id("flow-error-report").click()
    report = await download.value
    assert report.suggested_filename.endswith(".xlsx"), report.suggested_filename

    await chooser.set_input_files(csv_file("瑞信十一月流向-修正.csv", [
        [SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "5", "500"],
        [SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "6", "600"]]))
    await expect(page.get_by_test_id("flow-accepted")).to_contain_text(
        "全部 2 行通过校验，共 11 件", timeout=30_000)
    await expect(current).to_contain_text("已通过")
    cards = page.get_by_test_id("flow-upload-card")
    await expect(cards).to_have_count(2)
    await expect(cards.filter(has_text="瑞信十一月流向-修正.csv")).to_contain_text("已通过")
    await shoot(page, "flow-accepted")


async def test_hq_creates_a_rebate_program_and_the_dealer_sees_the_next_tier(flow_world,
                                                                             portal):
    world = flow_world
    page = await portal.open("admin", phone=False)
    await page.goto("/console/rebate-programs")
    await page.get_by_test_id("program-new").click()
    form = page.get_by_test_id("program-form")
    await form.locator("input[name=program-name]").fill(f"{YEAR} A系列 年度阶梯返利")
    await page.get_by_test_id("program-lines").get_by_text("A系列").click()
    await form.get_by_text("年", exact=True).click()
    dates = page.get_by_test_id("program-dates").locator("input")
    await dates.nth(0).fill(f"{YEAR}-01-01")
    await dates.nth(1).fill(f"{YEAR}-12-31")
    await dates.nth(1).press("Enter")
    await page.get_by_test_id("program-add-tier").click()
    tiers = page.get_by_test_id("program-tier")
    for index, (threshold, rate) in enumerate(((5, "2"), (20, "5"))):
        inputs = tiers.nth(index).locator("input")
        await inputs.nth(0).fill(str(threshold))
        await inputs.nth(1).fill(rate)
        await inputs.nth(1).blur()
    await shoot(page, "rebate-program-new", full_page=False)
    await page.get_by_test_id("program-save").click()
    listing = page.get_by_test_id("rebate-programs")
    await expect(page.get_by_test_id("program-form")).to_be_hidden(timeout=20_000)
    await expect(listing).to_contain_text(f"{YEAR} A系列 年度阶梯返利", timeout=20_000)
    await expect(listing).to_contain_text("阶梯追溯")
    await shoot(page, "rebate-programs")

    # 华泰 sold 8 boxes this year: tier 1 (≥5, 2%) reached, 12 more reach tier 2 (5%).
    dealer = await portal.open(world.dealers[2].staff.username, phone=True)
    await dealer.goto("/m/rebates")
    program = dealer.get_by_test_id("rebate-program").filter(has_text="年度阶梯返利")
    what_if = program.get_by_test_id("what-if")
    await expect(what_if).to_contain_text("第 1 档 · 2.00%", timeout=20_000)
    await expect(what_if.get_by_test_id("to-next-tier")).to_contain_text(
        "再卖 12 件即达下一档（5.00%）")
    await what_if.get_by_test_id("what-if-more").locator("input").fill("12")
    await what_if.get_by_test_id("what-if-ask").click()
    await expect(what_if.get_by_test_id("what-if-answer")).to_contain_text("测算返利 ¥")
    await shoot(dealer, "rebates-what-if")


async def test_hq_reads_flow_results_and_the_dashboard(flow_world, portal):
    page = await portal.open("admin", phone=False)
    await page.goto("/console/flow-uploads")
    uploads = page.get_by_test_id("console-flow-uploads")
    await expect(uploads).to_contain_text("瑞信十一月流向.csv", timeout=20_000)
    await expect(uploads).to_contain_text("华泰流向.csv")
    await shoot(page, "flow-uploads")
    await page.get_by_role("tab", name="已入账流向").click()
    rows = page.get_by_test_id("console-flow-rows")
    # 瑞信's two accepted rows of one hospital and day are one line of 11 boxes.
    await expect(rows).to_contain_text("¥1,100.00", timeout=20_000)
    await expect(rows).to_contain_text("上海华泰医疗用品有限公司")
    await shoot(page, "flow-rows")
    await page.goto("/console/dashboard")
    await expect(page.get_by_test_id("dashboard")).to_be_visible()
    # Orders and sell-through by region read /api/v1/stats/orders; the region is named.
    orders = page.get_by_test_id("chart-orders-by-region-month")
    await expect(orders).to_contain_text("GET /api/v1/stats/orders", timeout=20_000)
    await expect(orders.get_by_role("alert")).to_have_count(0)
    for chart in ("orders-by-region-month", "inventory-by-product", "dealer-ranking"):
        await expect(page.get_by_test_id(f"chart-{chart}").locator("[data-state=ready] canvas")
                     ).to_be_visible(timeout=30_000)
    await shoot(page, "dashboard-flow")


async def test_hq_confirms_a_diversion_flow_found(flow_world, portal):
    """康健 reports selling batch B2611, which the ERP shipped to 瑞信 and 华泰 only: the
    upload is rejected and flow flags the diversion with the shipment it came from."""
    world = flow_world
    kangjian = world.dealers[0]
    async with world.suite.client(kangjian.staff.token) as client:
        response = await client.post(
            "/api/v1/flow/uploads", params={"filename": "康健流向.csv"},
            content=flow_file([[SOLD_ON, "瑞金医院", "心内科", "A-001", "B2611", "2", "200"]]),
            headers={"content-type": "text/csv"})
        assert response.status_code == 201, response.text

    async def flagged():
        listed = await world.call(world.admin_token, "GET", "/api/v1/flow/diversions",
                                  params={"selling_dealer_id": kangjian.id})
        return listed["diversions"] or None

    await eventually(flagged, timeout=60)
    page = await portal.open("admin", phone=False)
    await page.goto("/console/diversions")
    row = page.get_by_test_id("diversions").locator(".el-table__row").filter(
        has_text=kangjian.name)
    await expect(row).to_contain_text("B2611", timeout=20_000)
    await expect(row).to_contain_text("SHP-FLOW-")
    await shoot(page, "diversions")
    await row.first.get_by_test_id("diversion-confirm").click()
    await page.locator(".el-message-box input").fill("批号 B2611 未发往康健，确认窜货")
    await page.locator(".el-message-box").get_by_role("button", name="确定").click()
    await expect(page.get_by_test_id("diversions")).not_to_contain_text(kangjian.name,
                                                                       timeout=20_000)
    resolved = await world.call(world.admin_token, "GET", "/api/v1/flow/diversions",
                                params={"selling_dealer_id": kangjian.id})
    assert {d["status"] for d in resolved["diversions"]} == {"confirmed"}


async def test_a_dealers_flow_pages_never_show_another_dealers_uploads(flow_world, portal):
    world = flow_world
    page = await portal.open(world.dealers[0].staff.username, phone=True)
    await page.goto("/m/flow")
    listing = page.get_by_test_id("flow-uploads")
    await expect(listing.locator(".van-list")).to_be_visible()
    await expect(listing.locator(".van-loading")).to_have_count(0)
    await expect(listing.get_by_test_id("flow-upload-card")).to_have_count(1, timeout=20_000)
    await expect(listing).to_contain_text("康健流向.csv")
    for secret in ("瑞信十一月流向", "华泰流向"):
        await expect(page.locator("body")).not_to_contain_text(secret)

    async def others_upload():
        listed = await world.call(world.dealers[1].staff.token, "GET", "/api/v1/flow/uploads")
        return listed["uploads"][0]["id"] if listed["uploads"] else None

    foreign = await eventually(others_upload)
    response = await page.request.get(f"/api/v1/flow/uploads/{foreign}/errors", headers={
        "Authorization": f"Bearer {world.dealers[0].staff.token}"})
    assert response.status == 404
    assert re.search("瑞信", await response.text()) is None
