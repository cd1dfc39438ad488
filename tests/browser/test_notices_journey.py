"""Notices in a real browser: HQ publishes a must-confirm notice to a tag from the
console, a dealer in the audience sees it unread on its phone's home, reads and confirms
it, a dealer outside never sees it, and HQ finds the confirmation in the receipts table;
then a material published to the same tag is found and downloaded on the phone."""

from __future__ import annotations

import base64

import pytest
from playwright.async_api import expect

from tests.browser.conftest import shoot


async def choose(page, test_id: str, option: str) -> None:
    """Pick an option of a select; a click that lands while its dropdown is still
    opening (a loaded machine) is made again, and the pick is checked."""
    select = page.get_by_test_id(test_id)
    for _ in range(3):
        await select.click()
        await page.locator(".el-select-dropdown__item:visible", has_text=option).click()
        try:
            await expect(select).to_contain_text(option, timeout=3_000)
            return
        except AssertionError:
            await page.keyboard.press("Escape")
    await expect(select).to_contain_text(option)

pytestmark = pytest.mark.asyncio(loop_scope="module")

TAG = "重点通知客户"
TITLE = "五一假期发货安排"


async def test_hq_publishes_a_dealer_confirms_another_never_sees_it(world, portal):
    reached, outside = world.dealers[0], world.dealers[1]
    await world.call(world.admin_token, "POST", "/api/v1/dealer-tags",
                     json={"dealer_ids": [reached.id], "tags": [TAG]})

    console = await portal.open("admin", phone=False)
    await console.goto("/console/notices")
    await expect(console.get_by_test_id("notices")).to_be_visible()
    await console.get_by_test_id("publish-notice").click()
    await console.get_by_test_id("notice-title").fill(TITLE)
    await choose(console, "notice-category", "节假日安排")
    await console.get_by_test_id("notice-body").fill(
        "5月1日至5日暂停发货，请提前备货。")
    await console.get_by_test_id("audience-tags").click()
    await console.keyboard.type("重点")
    await console.locator(".el-select-dropdown__item:visible", has_text=TAG).click()
    await console.keyboard.press("Escape")
    await shoot(console, "notice-publish", full_page=False)
    await console.get_by_test_id("notice-submit").click()
    await expect(console.locator(".el-message--success")).to_contain_text("送达 1 家经销商")
    row = console.get_by_test_id("notices").locator(".el-table__row").filter(has_text=TITLE)
    await expect(row).to_contain_text("节假日安排")

    phone = await portal.open(reached.staff.username, phone=True)
    await phone.goto("/m/home")
    tile = phone.get_by_test_id("todo-unreadNotices")
    await expect(tile).to_contain_text("1")
    await tile.click()
    card = phone.get_by_test_id("notice-card").filter(has_text=TITLE)
    await expect(card.get_by_test_id("unread-dot")).to_be_visible()
    await expect(card).to_contain_text("需确认")
    await shoot(phone, "notices")
    await card.click()
    await expect(phone.get_by_test_id("notice-body")).to_contain_text("暂停发货")
    await phone.get_by_test_id("confirm-notice").click()
    await expect(phone.get_by_test_id("notice-confirmed")).to_contain_text("确认")
    await shoot(phone, "notice-detail")

    other = await portal.open(outside.staff.username, phone=True)
    await other.goto("/m/notices")
    await expect(other.get_by_test_id("notices")).to_contain_text("暂无通知")
    await expect(other.get_by_test_id("notice-card")).to_have_count(0)

    await console.goto("/console/notices")
    row = console.get_by_test_id("notices").locator(".el-table__row").filter(has_text=TITLE)
    await row.get_by_test_id("notice-receipts").click()
    receipts = console.get_by_test_id("notice-receipts")
    line = receipts.locator(".el-table__row").filter(has_text=reached.staff.username)
    await expect(line).to_contain_text("已确认")
    await expect(line).to_contain_text(reached.name)
    await expect(receipts.locator(".el-table__row")).to_have_count(1)
    await shoot(console, "notice-receipts")


async def test_a_dealer_finds_and_downloads_a_material(world, portal):
    reached, outside = world.dealers[0], world.dealers[1]
    await world.call(world.admin_token, "POST", "/api/v1/dealer-tags",
                     json={"dealer_ids": [reached.id], "tags": [TAG]})
    await world.call(world.admin_token, "POST", "/api/v1/materials", json={
        "title": "A系列开场话术", "description": "医院采购科拜访用", "kind": "talk_track",
        "audience": {"term": {"tag": TAG}},
        "file": {"filename": "话术.pdf", "content_type": "application/pdf",
                 "content_base64": base64.b64encode(b"%PDF-1.4 talk").decode()}})
    phone = await portal.open(reached.staff.username, phone=True)
    await phone.goto("/m/materials")
    card = phone.get_by_test_id("material-card").filter(has_text="A系列开场话术")
    await expect(card).to_contain_text("话术")
    await shoot(phone, "materials")
    async with phone.expect_download() as downloading:
        await card.get_by_test_id("download-material").click()
    assert (await downloading.value).suggested_filename == "话术.pdf"
    other = await portal.open(outside.staff.username, phone=True)
    await other.goto("/m/materials")
    await expect(other.get_by_test_id("materials")).to_contain_text("暂无素材")

    console = await portal.open("admin", phone=False)
    await console.goto("/console/material-usage")
    row = console.get_by_test_id("material-usage").locator(".el-table__row")
    await expect(row.filter(has_text=reached.name)).to_contain_text("A系列开场话术")
    await shoot(console, "material-usage")
