"""The dashboard in a real headless browser: Debian's Chromium driven by Playwright,
against ``legato ui`` running for real on SQLite and PostgreSQL.

``make browser`` (part of ``make test``) installs Chromium; without it these
tests skip and say why (in CI, where ``CI`` is set, they fail instead).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

import legato
from hygiene import hygiene  # noqa: F401  (autouse: no unawaited coroutine, no lost task)
from polling import eventually
from ui_harness import ARTIFACTS, Dashboard, need_browser
from ui_workflows import BRANCHES, Running, populate_all, progressing

pytest.importorskip("starlette", reason="the dashboard needs the ui extra (make test installs it)")

TOKEN = "s3cret-token"
TIMEOUT = 15_000  # ms: how long an expectation may take to come true before it fails


@pytest.fixture
async def store(db: str) -> AsyncIterator[str]:
    """A store with a workflow in every status; ``blocked-1`` runs until the test ends."""
    await populate_all(db)
    async with Running(db):
        yield db


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    chromium = need_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
async def dashboard(store: str) -> AsyncIterator[Dashboard]:
    ui = await Dashboard.start(store)
    yield ui
    ui.stop()


async def test_the_list_shows_executions_in_every_status(dashboard, page, store):
    await page.goto(dashboard.url)
    await page.wait_for_selector('tr[data-id="blocked-1"]')
    rows = await page.eval_on_selector_all(
        "tr[data-id]", "rows => rows.map(r => [r.dataset.id, r.dataset.status])")
    assert dict(rows) == {
        "ok-1": "succeeded", "ok-1/2": "succeeded", "fanout-1": "succeeded",
        "bad-1": "failed", "wait-1": "waiting", "progress-1": "waiting",
        "later-1": "pending", "gone-1": "cancelled", "blocked-1": "running"}
    assert {status for _, status in rows} == {s.value for s in legato.Status}
    # live: a workflow started now shows up without a reload
    async with legato.Runtime(store, worker=False) as rt:
        await rt.start(progressing, 5, id="late-1", delay="1h")
    await page.wait_for_selector('tr[data-id="late-1"][data-status="pending"]')
    bar = page.locator('tr[data-id="progress-1"] .progress')
    assert await bar.get_attribute("data-percent") == "30.0"
    assert await bar.locator(".ptext").inner_text() == "3/10 fetching"
    failed = await page.locator('tr[data-id="bad-1"] .detail').inner_text()
    assert "CardDeclined: card declined for 900" in failed
    await page.select_option('select[name="status"]', "waiting")
    await page.click('button[type="submit"]')
    await page.wait_for_url(lambda url: "status=waiting" in url)
    assert sorted(await page.eval_on_selector_all(
        "tr[data-id]", "rows => rows.map(r => r.dataset.id)")) == ["progress-1", "wait-1"]


async def test_three_concurrent_branches_overlap_on_the_timeline(dashboard, page, store):
    await page.goto(f"{dashboard.url}workflows/fanout-1")
    await page.wait_for_selector("#gantt .bar")
    branches = page.locator('#gantt .grow[data-kind="branch"] .bar')
    steps = page.locator('#gantt .grow[data-kind="step"] .bar')
    assert await branches.count() == BRANCHES and await steps.count() == BRANCHES
    for bars in (branches, steps):
        boxes = [await bars.nth(i).bounding_box() for i in range(BRANCHES)]
        for a, b in itertools.combinations(boxes, 2):
            assert a["width"] > 0 and b["width"] > 0
            # each pair shares some horizontal stretch: they ran at the same time
            assert a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"], (a, b)
    # nested as on the CLI: each branch holds its step, one level in
    positions = await page.eval_on_selector_all(
        "#gantt .grow[data-position]", "rows => rows.map(r => r.dataset.position)")
    assert positions == ["1", "1.1", "2", "2.1", "3", "3.1"]
    ARTIFACTS.mkdir(exist_ok=True)
    kind = "postgres" if store.startswith("postgres") else "sqlite"
    shot = ARTIFACTS / f"execution-fanout-{kind}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


async def test_the_execution_page_shows_retries_error_and_progress(dashboard, page):
    await page.goto(f"{dashboard.url}workflows/bad-1")
    assert await page.locator('#gantt .grow[data-kind="attempt"]').count() == 2
    assert await page.locator('#gantt .grow[data-kind="sleep"] .bar.wait').count() == 2
    assert "3 attempts" in await page.locator('#gantt .grow[data-position="1"]').inner_text()
    assert "CardDeclined" in await page.locator("#error .traceback").inner_text()
    await page.goto(f"{dashboard.url}workflows/progress-1")
    assert await page.locator("#progress progress").get_attribute("value") == "30.0"
    # a value is short until expanded
    await page.goto(f"{dashboard.url}workflows/ok-1")
    output = page.locator('details[data-key="output"]')
    assert not await output.locator("pre").is_visible()
    await output.locator("summary").click()
    assert '"packed": "2xtea"' in await output.locator("pre").inner_text()


async def test_the_cancel_button_cancels_a_waiting_workflow(dashboard, page, store):
    await page.goto(f"{dashboard.url}workflows/wait-1")
    page.once("dialog", lambda dialog: dialog.dismiss())  # changed their mind: nothing sent
    await page.click("#cancel-button")
    assert await page.locator("#notice").count() == 0
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("#cancel-button")
    await page.wait_for_selector("#notice")
    assert await page.locator("#notice").inner_text() == "cancel requested"
    async with legato.Runtime(store, worker=False) as rt:
        await eventually(lambda: _status(rt, "wait-1", "cancelled"), timeout=20)
    # live refresh brings the page up to date without a reload
    await page.wait_for_selector("#status.cancelled")
    assert await page.locator("#cancel-button").count() == 0
    assert await page.locator("#resume-button").count() == 1


async def test_a_write_without_the_token_is_refused(store, page):
    ui = await Dashboard.start(store, "--token", TOKEN)
    try:
        await page.goto(f"{ui.url}workflows/wait-1")
        page.once("dialog", lambda dialog: dialog.accept())
        async with page.expect_response(lambda r: "/cancel/" in r.url) as answer:
            await page.click("#cancel-button")
        assert (await answer.value).status == 401
        await page.wait_for_selector("#message")
        assert "needs its token" in await page.locator("#message").inner_text()
        async with legato.Runtime(store, worker=False) as rt:
            assert await rt.handle("wait-1").status() == "waiting"
        # the URL `legato ui` prints logs the browser in; then the same click works
        await page.goto(f"{ui.url}workflows/wait-1?token={TOKEN}")
        assert page.url == f"{ui.url}workflows/wait-1"
        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#cancel-button")
        await page.wait_for_selector("#notice")
        async with legato.Runtime(store, worker=False) as rt:
            await eventually(lambda: _status(rt, "wait-1", "cancelled"), timeout=20)
    finally:
        ui.stop()


async def _status(rt: legato.Runtime, workflow_id: str, status: str) -> bool:
    return await rt.handle(workflow_id).status() == status
