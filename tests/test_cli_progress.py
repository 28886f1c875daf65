"""``legato.progress`` and its bar in ``legato show`` and ``legato tail``."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner, Result

import legato
from legato.cli import app
from legato.cli._tail import Follower
from polling import eventually, status_is

BAR = "━"


@legato.workflow(name="progress.crawl")
async def crawl(total: int) -> int:
    await legato.progress(3, total, "fetching")
    await legato.wait_for_signal("go")
    await legato.progress(total, total, "done")
    return total


@legato.workflow(name="progress.bad")
async def bad_progress() -> None:
    await legato.progress(1, 0)


@pytest.fixture
async def store(db: str) -> str:
    """A store holding ``crawl-1``: waiting for its signal at 3 of 10."""
    async with legato.Runtime(db, suspend_after=0) as rt:
        handle = await rt.start(crawl, 10, id="crawl-1")
        await eventually(status_is(handle, "waiting"))
    return db


def cli(*args: str, store: str) -> Result:
    return CliRunner(env={"LEGATO_STORE": store}).invoke(app, list(args),
                                                         catch_exceptions=False)


def test_progress_is_the_progress_event(store):
    async def read() -> object:
        async with legato.Runtime(store, worker=False) as rt:
            return await rt.handle("crawl-1").get_event("progress", timeout=0)

    value = asyncio.run(read())
    assert value == {"done": 3, "total": 10, "message": "fetching"}
    progress = legato.Progress.read(value)
    assert progress is not None and (progress.percent, progress.text) == (30.0, "3/10 fetching")


def test_show_draws_the_bar(store):
    done = cli("show", "crawl-1", store=store)
    assert done.exit_code == 0, done.output
    (line,) = [row for row in done.stdout.splitlines() if row.startswith("  progress ")]
    assert line.rstrip().endswith("3/10 fetching")
    assert line.count(BAR) == 9  # 30% of a 30-character bar


def test_tail_draws_the_bar_and_json_carries_the_value(store):
    done = cli("tail", "--since", "1h", "--count", "1", store=store)
    (line,) = done.stdout.splitlines()
    assert line.split()[1:4] == ["crawl-1", "progress.crawl", "waiting"]
    assert BAR * 9 in line and line.rstrip().endswith("3/10 fetching")
    rows = cli("tail", "--since", "1h", "--count", "1", "--json", store=store)
    assert json.loads(rows.stdout)["progress"] == {"done": 3, "total": 10,
                                                   "message": "fetching"}


async def test_tail_reports_new_progress_like_a_new_status(store):
    follower = Follower(since=0.0)
    async with legato.Runtime(store) as rt:
        first, _ = await follower.poll(rt)
        assert [i.id for i in first] == ["crawl-1"]
        assert follower.progress["crawl-1"]["done"] == 3
        assert await follower.poll(rt) == ([], False)
        await rt.signal("crawl-1", "go")
        await rt.handle("crawl-1").result(timeout=10)
        changed, idle = await follower.poll(rt)
    assert [(i.id, i.status) for i in changed] == [("crawl-1", "succeeded")] and idle
    assert follower.progress["crawl-1"] == {"done": 10, "total": 10, "message": "done"}


async def test_progress_checks_its_numbers(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="total > 0"):
            await rt.run(bad_progress, id="bad-1")
