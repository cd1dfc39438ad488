"""Browser tests of the portal: one suite and one headless Chromium per module (Debian's
chromium driven by Playwright), a phone (390×844) and a desktop (1440×900) viewport,
sign-in as any user, and screenshots of the key pages into var/screenshots/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from tests.browser.world import PASSWORD, build_portal_world
from tests.harness import ADMIN_PASSWORD, Suite

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("QUDAO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
# The registration index picks up new customers quickly, so evidence shows at once.
OPTIONS = {"QUDAO_REGISTRATION_OPTION_INDEX_REFRESH_SECONDS": "0.5"}


def pytest_collection_modifyitems(items):
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal_suite(tmp_path_factory):
    running = await Suite(tmp_path_factory.mktemp("portal"), options=OPTIONS).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(portal_suite):
    return await build_portal_world(portal_suite)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Portal:
    """Opens pages of the portal as a signed-in user on a phone or a desktop."""

    def __init__(self, browser, suite: Suite) -> None:
        self.browser = browser
        self.base = suite.base_url
        self.contexts = []
        # What the browser refused under the gateway's Content-Security-Policy: the
        # portal must need nothing the policy forbids.
        self.csp_violations: list[str] = []

    async def open(self, username: str, *, phone: bool, locale: str = "zh-CN"):
        context = await self.browser.new_context(**(PHONE if phone else DESKTOP),
                                                 locale=locale, base_url=self.base)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda message: self.csp_violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.set_default_timeout(30_000)
        await page.goto("/login")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", ADMIN_PASSWORD if username == "admin" else PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda url: "/login" not in url)
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def portal(browser, portal_suite):
    opened = Portal(browser, portal_suite)
    try:
        yield opened
    finally:
        await opened.close()
    assert not opened.csp_violations, opened.csp_violations


async def shoot(page, name: str, *, full_page: bool = True) -> Path:
    """A screenshot named by viewport, var/screenshots/<phone|desktop>-<name>.png, once the
    page is quiet: the phone's screen as a person sees it, the desktop's whole page (or its
    window, for a dialog)."""
    from playwright.async_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = page.viewport_size["width"] < 600
    path = SCREENSHOTS / f"{'phone' if phone else 'desktop'}-{name}.png"
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(".van-toast:visible, .el-message:visible")).to_have_count(0)
    await page.screenshot(path=str(path), full_page=full_page and not phone)
    return path
