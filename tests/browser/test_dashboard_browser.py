"""The dashboard in a real headless Chromium: it loads, shows the simulator's positions
from the running bot, updates without a reload, and its button stops entries.

Uses Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by the
``playwright`` package; a screenshot is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.integration.api.conftest import TOKEN, Stack, running_bot
from tests.polling import until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Skipped only on a developer machine without Chromium; in CI (.ci/run installs it) a
# missing browser fails the test instead of hiding it.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="chromium not installed (.ci/run installs it)",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_bot(tmp_path) as stack:
        yield stack


@pytest.mark.timeout(90)
async def test_dashboard_shows_positions_updates_live_and_stops_entries(
    bot: Stack, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(bot.server.url + "/")
    await expect(page.locator("#conn-state")).to_have_text("IB: connected")
    rows = page.locator("#positions tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator("td").nth(0)).to_have_text("AAPL")
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text("10.0")
    await expect(rows.nth(1).locator("td").nth(0)).to_have_text("MSFT")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("5.0")
    await expect(page.locator("#positions tbody")).not_to_contain_text("DU1234567")
    await expect(page.locator("#entries-state")).to_have_text("entries allowed")

    # live update without reload: a fill made by the bot appears in the fills table
    await page.evaluate("window.__marker = 1")
    page.once("dialog", lambda d: d.accept())
    await rows.nth(1).locator("button").click()  # Flatten MSFT, confirmed in the dialog
    await expect(page.locator("#fills tbody tr")).to_have_count(1, timeout=15_000)
    await expect(page.locator("#fills tbody tr td").nth(1)).to_have_text("MSFT")
    await expect(page.locator("#positions tbody tr")).to_have_count(1, timeout=15_000)
    assert await page.evaluate("window.__marker") == 1  # same page: nothing reloaded

    await page.click("#btn-stop-entries")
    await expect(page.locator("#entries-state")).to_have_text("entries stopped")
    await until(lambda: bot.runner.entries_stopped, what="the runner's entry gate to close")
    assert bot.runner.entries_stopped is True
    await expect(page.locator("#pnl-chart polyline")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert errors == []


@pytest.mark.timeout(90)
async def test_dashboard_asks_for_the_token_when_one_is_required(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_bot(tmp_path, token=TOKEN, seed={"AAPL": Decimal(3)}) as bot:
        page = await browser.new_page()
        await page.goto(bot.server.url + "/")
        await expect(page.locator("#auth")).to_be_visible()
        await expect(page.locator("#error")).to_contain_text("API token")
        await expect(page.locator("#positions tbody tr")).to_have_count(0)
        await page.fill("#token", TOKEN)
        await page.click("#btn-token")
        await expect(page.locator("#auth")).to_be_hidden()
        await expect(page.locator("#positions tbody tr")).to_have_count(1)
        await expect(page.locator("#positions tbody tr td").nth(0)).to_have_text("AAPL")
        await page.reload()  # the token is kept for the browser tab, not asked again
        await expect(page.locator("#positions tbody tr")).to_have_count(1)
        await expect(page.locator("#auth")).to_be_hidden()
