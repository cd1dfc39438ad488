"""The dealer's portal in a real browser, on a phone first: order from the price list
with credit shown, confirm a receipt reporting a shortage, register a hospital and see
the duplicate check's evidence while typing, and never see another dealer's data."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import shoot
from tests.browser.world import ZHONGSHAN
from tests.harness import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_dealer_orders_from_the_price_list(world, portal):
    dealer = world.dealers[0]
    page = await portal.open(dealer.staff.username, phone=True)
    await expect(page.get_by_test_id("dealer-home")).to_contain_text(dealer.name)
    await expect(page.get_by_test_id("available-credit")).to_have_text("¥0.00")
    await expect(page.get_by_test_id("todo-awaitingOrders")).to_contain_text("0")
    await shoot(page, "dealer-home")

    await page.locator(".van-tabbar").get_by_text("订货").click()
    product = page.get_by_test_id("product-A-001")
    # The tier-one price list (¥112.50) with the catalog price struck through.
    await expect(product).to_contain_text("¥112.50")
    await expect(product).to_contain_text("¥125.00")
    for _ in range(3):
        await product.locator(".van-stepper__plus").click()
    await page.get_by_test_id("product-A-003").locator(".van-stepper__plus").click()
    await expect(page.get_by_test_id("order-total")).to_have_text("¥378.00")
    # No credit line yet: the order will need approval, and the page says so first.
    await expect(page.get_by_text("超出可用额度")).to_be_visible()
    await shoot(page, "order-new")

    await page.get_by_test_id("order-submit").click()
    detail = page.get_by_test_id("order-detail")
    await expect(detail).to_contain_text("待审批")
    await expect(detail).to_contain_text("等待渠道经理审批")
    await expect(page.get_by_test_id("order-detail-total")).to_have_text("¥378.00")
    await expect(page.get_by_test_id("order-line")).to_have_count(2)
    await expect(detail).to_contain_text("超出额度，需审批")
    await shoot(page, "order-detail")

    await page.goto("/m/orders")
    await expect(page.get_by_test_id("order-card").first).to_contain_text("¥378.00")
    await shoot(page, "orders")


async def test_dealer_confirms_a_receipt_and_reports_a_shortage(world, portal):
    dealer = world.dealers[2]
    await world.give_credit(dealer, 10_000_000)
    order = await world.order(dealer, "PO-HT-0001", {"A-001": 10, "A-002": 20})
    assert order["status"] == "approved", order
    await world.ship(order, "SHP-HT-0001")

    page = await portal.open(dealer.staff.username, phone=True)
    await expect(page.get_by_test_id("todo-toReceive")).to_contain_text("1")
    await page.get_by_test_id("todo-toReceive").click()
    await page.get_by_test_id("shipment-card").filter(has_text="SHP-HT-0001").click()
    await expect(page.get_by_test_id("shipment-line")).to_have_count(2)
    await page.get_by_test_id("report-issue").click()
    # Two boxes of A-001 short: 8 of 10 arrived.
    received = page.get_by_test_id("received-1")
    await received.locator(".van-stepper__minus").click()
    await received.locator(".van-stepper__minus").click()
    await expect(received.locator("input")).to_have_value("8")
    await expect(page.get_by_text("将登记为收货差异")).to_be_visible()
    await shoot(page, "receipt")
    await page.get_by_test_id("confirm-receipt").click()
    await expect(page.get_by_test_id("shipment-state")).to_have_text("已收货")
    discrepancy = page.get_by_test_id("discrepancy")
    await expect(discrepancy).to_contain_text("短少 × 2")
    await expect(discrepancy).to_contain_text("处理中")
    await shoot(page, "receipt-confirmed")

    async def received_quantities():
        fetched = await world.call(dealer.staff.token, "GET", f"/api/v1/orders/{order['id']}")
        return [line["quantity_received"] for line in fetched["lines"]] == [8, 20]

    await eventually(received_quantities)
    await page.goto(f"/m/orders/{order['id']}")
    await expect(page.get_by_test_id("order-line").first).to_contain_text("8")


async def test_dealer_registers_a_hospital_and_sees_the_evidence(world, portal):
    holder, dealer = world.dealers[0], world.dealers[1]
    held = await world.register(holder, ZHONGSHAN, "reg-zhongshan")
    await world.call(world.manager.token, "POST", f"/api/v1/registrations/{held['id']}/approve",
                     json={"comment": "资料齐全"})

    async def indexed():
        check = await world.call(dealer.staff.token, "POST", "/api/v1/customers/check-duplicates",
                                 json={"name": "中山医院", "address": "上海市长宁区"})
        return check["verdict"] == "possible_duplicate"

    await eventually(indexed)
    page = await portal.open(dealer.staff.username, phone=True)
    await page.locator(".van-tabbar").get_by_text("报备").click()
    await page.get_by_test_id("customer-name").locator("input").fill("中山医院")
    await page.get_by_test_id("customer-address").locator("input").fill("上海市长宁区仙霞路")
    evidence = page.get_by_test_id("duplicate-evidence")
    await expect(evidence).to_have_attribute("data-verdict", "possible_duplicate")
    candidate = page.get_by_test_id("duplicate-candidate").first
    await expect(candidate).to_contain_text("复旦大学附属中山医院")
    await expect(candidate).to_contain_text("名称相似")
    # Why it matched: the same name core (in another district, so only for review).
    await expect(candidate.get_by_test_id("match-reasons")).to_contain_text("名称主干")
    # Who holds it is a dealer's business secret: "another dealer", protected until …
    await expect(candidate).to_contain_text("其他经销商")
    await expect(candidate).to_contain_text("保护中")
    await expect(candidate).to_contain_text(re.compile(r"保护至 \d{4}-\d{2}-\d{2}"))
    await expect(candidate).not_to_contain_text(holder.name)
    await shoot(page, "register-evidence")

    await page.get_by_test_id("register-submit").click()
    result = page.get_by_test_id("register-result")
    await expect(result).to_contain_text("总部审核")
    await shoot(page, "register-result")

    await page.goto("/m/registrations")
    await expect(page.get_by_test_id("registration-card").first).to_contain_text("中山医院")
    await shoot(page, "registrations")


async def test_a_dealer_never_sees_another_dealers_data(world, portal):
    other, dealer = world.dealers[2], world.dealers[1]
    await world.give_credit(other, 10_000_000)
    order = await world.order(other, "PO-HT-SECRET", {"A-004": 5})
    await world.ship(order, "SHP-HT-SECRET")
    sixth = {"name": "上海市第六人民医院", "address": "上海市徐汇区宜山路600号"}
    await world.register(other, sixth, "reg-sixth")

    page = await portal.open(dealer.staff.username, phone=True)
    await expect(page.get_by_test_id("dealer-home")).to_contain_text(dealer.name)
    for path, testid in (("/m/orders", "orders"), ("/m/shipments", "shipments"),
                         ("/m/registrations", "registrations"), ("/m/statements", "statements"),
                         ("/m/commissions", "commissions")):
        await page.goto(path)
        listing = page.get_by_test_id(testid)
        await expect(listing.locator(".van-list")).to_be_visible()
        await expect(listing.locator(".van-loading")).to_have_count(0)
        for secret in ("PO-HT-SECRET", "SHP-HT-SECRET", "上海市第六人民医院", other.name):
            await expect(listing).not_to_contain_text(secret)
    # Even the address of the other dealer's order shows nothing but the API's 404.
    await page.goto(f"/m/orders/{order['id']}")
    await expect(page.get_by_role("alert")).to_contain_text("404")
    await expect(page.locator("body")).not_to_contain_text("PO-HT-SECRET")
    await page.goto(f"/m/shipments/{order['id']}")
    await expect(page.get_by_role("alert")).to_be_visible()


async def test_dealer_portal_on_a_desktop_and_in_english(world, portal):
    dealer = world.dealers[0]
    page = await portal.open(dealer.staff.username, phone=False)
    await expect(page.get_by_test_id("dealer-home")).to_contain_text(dealer.name)
    await expect(page.get_by_role("navigation")).to_contain_text("我的报备")
    await shoot(page, "dealer-home")
    await page.get_by_role("navigation").get_by_role("link", name="订货").click()
    await expect(page.get_by_test_id("product-A-002")).to_contain_text("¥34.20")
    await shoot(page, "order-new")
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("navigation")).to_contain_text("My registrations")
    await expect(page.get_by_test_id("product-A-002")).to_contain_text("per 盒")
