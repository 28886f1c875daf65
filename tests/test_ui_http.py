"""The dashboard over HTTP (httpx against ``legato ui`` running for real): paging,
filters, read-only, the token, and ``/metrics`` after a known workload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

import legato
from hygiene import hygiene  # noqa: F401  (autouse: no unawaited coroutine, no lost task)
from polling import eventually
from ui_harness import Dashboard
from ui_workflows import Running, populate_all

pytest.importorskip("starlette", reason="the dashboard needs the ui extra (make test installs it)")

TOKEN = "s3cret-token"
ALL = {"ok-1", "ok-1/2", "bad-1", "wait-1", "later-1", "gone-1", "fanout-1", "progress-1",
       "blocked-1"}


@pytest.fixture
async def store(db: str) -> AsyncIterator[str]:
    """A store with a workflow in every status; ``blocked-1`` runs until the test ends."""
    await populate_all(db)
    async with Running(db):
        yield db


@pytest.fixture
async def serve() -> AsyncIterator[type[Dashboard]]:
    started: list[Dashboard] = []

    class Tracked(Dashboard):
        @classmethod
        async def start(cls, store: str, *options: str, timeout: float = 30.0) -> Dashboard:
            dashboard = await super().start(store, *options, timeout=timeout)
            started.append(dashboard)
            return dashboard

    yield Tracked
    for d in started:
        d.stop()


def ids(html: str) -> list[str]:
    """The workflow ids of a list page's rows, in order."""
    return [part.split('"', 1)[0] for part in html.split('<tr data-id="')[1:]]


async def test_the_list_filters_by_status_name_queue_and_time(store, serve):
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert set(ids(page.text)) == ALL
        for status, expected in [("failed", ["bad-1"]), ("running", ["blocked-1"]),
                                 ("pending", ["later-1"]), ("cancelled", ["gone-1"])]:
            assert ids((await http.get("/", params={"status": status})).text) == expected
        waiting = ids((await http.get("/", params={"status": "waiting"})).text)
        assert sorted(waiting) == ["progress-1", "wait-1"]
        assert ids((await http.get("/", params={"queue": "emails"})).text) == ["later-1"]
        named = await http.get("/", params={"name": "shop.checkout", "status": "succeeded"})
        assert ids(named.text) == ["ok-1"]
        assert set(ids((await http.get("/", params={"window": "1h"})).text)) == ALL
        assert ids((await http.get("/", params={"until": "2001-01-01T00:00"})).text) == []
        assert set(ids((await http.get("/", params={"since": "2001-01-01T00:00"})).text)) == ALL
        bad = await http.get("/", params={"status": "sleepy"})
        assert bad.status_code == 400 and "unknown status" in bad.text
        # the page's own script asks for the rows only
        fragment = await http.get("/", params={"status": "failed"},
                                  headers={"X-Legato-Fragment": "1"})
        assert fragment.text.lstrip().startswith("<table") and "<html" not in fragment.text
        assert "CardDeclined: card declined for 900" in fragment.text


async def test_the_execution_page_shows_error_values_events_and_children(store, serve):
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        bad = (await http.get("/workflows/bad-1")).text
        assert "CardDeclined: card declined for 900" in bad and "Traceback" in bad
        assert "3 attempts" in bad and 'data-kind="attempt"' in bad
        ok = (await http.get("/workflows/ok-1")).text
        assert 'href="/workflows/ok-1/2"' in ok and "&#39;packed&#39;" in ok  # child, event
        child = await http.get("/workflows/ok-1/2")
        assert child.status_code == 200 and 'href="/workflows/ok-1"' in child.text
        progress = (await http.get("/workflows/progress-1")).text
        assert 'data-percent="30.0"' in progress and "3/10 fetching" in progress
        missing = await http.get("/workflows/nope")
        assert missing.status_code == 404 and "no workflow has the id" in missing.text


async def test_a_signal_from_the_dashboard_reaches_the_workflow(store, serve):
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        sent = await http.post("/signal/wait-1", data={"name": "approve",
                                                       "payload": '{"by": "ana"}'})
        assert sent.status_code == 200, sent.text
        assert sent.json()["done"] == "signal 'approve' sent"
        bad = await http.post("/signal/wait-1", data={"name": "approve", "payload": "{nope"})
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    async with legato.Runtime(store, worker=False) as rt:
        assert await rt.handle("wait-1").result(timeout=20) == {"by": "ana"}


async def test_read_only_hides_and_refuses_writes(store, serve):
    ui = await serve.start(store, "--read-only")
    async with httpx.AsyncClient(base_url=ui.url) as http:
        page = (await http.get("/workflows/wait-1")).text
        assert "cancel-button" not in page and "signal-button" not in page
        assert "read-only" in page
        for action in ("cancel", "resume", "signal"):
            refused = await http.post(f"/{action}/wait-1", data={"name": "approve"})
            assert refused.status_code == 403
            assert "read-only" in refused.json()["error"]
    async with legato.Runtime(store, worker=False) as rt:
        assert await rt.handle("wait-1").status() == "waiting"


async def test_writes_need_the_token_when_one_is_set(store, serve):
    ui = await serve.start(store, "--token", TOKEN)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        assert (await http.get("/workflows/wait-1")).status_code == 200  # reads are open
        missing = await http.post("/cancel/wait-1")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "needs its token" in missing.json()["error"]
        wrong = await http.post("/cancel/wait-1", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 403 and "wrong token" in wrong.json()["error"]
        html = await http.post("/cancel/wait-1", headers={"Accept": "text/html"})
        assert html.status_code == 401 and "Token needed" in html.text
        elsewhere = await http.post("/cancel/wait-1", headers={
            "Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"})
        assert elsewhere.status_code == 403 and "another site" in elsewhere.json()["error"]
        assert (await http.get("/", params={"token": "guess"})).status_code == 403
    async with legato.Runtime(store, worker=False) as rt:
        assert await rt.handle("wait-1").status() == "waiting"
    async with httpx.AsyncClient(base_url=ui.url, follow_redirects=True) as http:
        login = await http.get("/", params={"token": TOKEN, "status": "failed"})
        assert login.status_code == 200 and ids(login.text) == ["bad-1"]
        assert str(login.url).endswith("/?status=failed")  # the token left the URL
        assert "HttpOnly" in login.history[0].headers["set-cookie"]
        done = await http.post("/cancel/wait-1")  # the cookie carries it
        assert done.status_code == 200 and done.json()["done"] == "cancel requested"
    async with legato.Runtime(store, worker=False) as rt:
        await eventually(lambda: _status(rt, "wait-1", "cancelled"), timeout=20)


async def test_only_loopback_host_names_are_served(store, serve):
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        assert (await http.get("/healthz")).text == "ok"
        rebound = await http.get("/", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400


async def test_metrics_count_a_known_workload(store, serve):
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url) as http:
        scrape = await http.get("/metrics")
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(scrape.text)
    assert {s: samples[f'legato_workflows{{status="{s}"}}'] for s in
            ("pending", "running", "waiting", "succeeded", "failed", "cancelled")} == {
        "pending": 1, "running": 1, "waiting": 2, "succeeded": 3, "failed": 1, "cancelled": 1}
    assert samples['legato_workflows_by_name{name="shop.checkout",status="succeeded"}'] == 1
    assert samples['legato_workflows_by_name{name="shop.checkout",status="pending"}'] == 1
    assert samples['legato_workflows_by_name{name="ui.fanout",status="succeeded"}'] == 1
    assert samples['legato_queue_depth{queue="emails"}'] == 1
    assert samples["legato_workflows_suspended"] == 2
    assert "# TYPE legato_workflows gauge" in scrape.text


async def test_ten_thousand_executions_page_fast(tmp_path, serve):
    store = str(tmp_path / "bulk.db")
    async with legato.Runtime(store, worker=False) as rt:
        for chunk in range(0, 10_000, 500):
            await asyncio.gather(*(rt.start(bulk, i, id=f"bulk-{i:05d}", delay="1h")
                                   for i in range(chunk, chunk + 500)))
    ui = await serve.start(store)
    async with httpx.AsyncClient(base_url=ui.url, timeout=30) as http:
        first = await http.get("/")
        assert ids(first.text) == [f"bulk-{i:05d}" for i in range(9999, 9949, -1)]
        began = time.perf_counter()
        deep = await http.get("/", params={"page": 150})
        took = time.perf_counter() - began
        assert ids(deep.text) == [f"bulk-{i:05d}" for i in range(2499, 2449, -1)]
        assert took < 2.0, f"page 150 of 10,000 took {took:.3f} s"
        last = await http.get("/", params={"page": 199})
        assert ids(last.text)[-1] == "bulk-00000" and 'rel="next"' not in last.text
        assert 'rel="next"' in deep.text and 'rel="prev"' in deep.text
        assert ids((await http.get("/", params={"page": 200})).text) == []
        metrics = _samples((await http.get("/metrics")).text)
        assert metrics['legato_workflows{status="pending"}'] == 10_000
        assert metrics['legato_queue_depth{queue=""}'] == 10_000


@legato.workflow(name="ui.bulk")
async def bulk(i: int) -> int:
    return i


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


async def _status(rt: legato.Runtime, workflow_id: str, status: str) -> bool:
    return await rt.handle(workflow_id).status() == status
