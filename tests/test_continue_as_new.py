"""``legato.continue_as_new``: a workflow that loops forever keeps a bounded history."""

from __future__ import annotations

import sqlite3

import pytest

import legato

calls: dict[str, int] = {}


@legato.step
async def tick(n: int) -> int:
    calls[f"tick-{n}"] = calls.get(f"tick-{n}", 0) + 1
    return n + 1


@legato.workflow(name="can_poller")
async def poller(n: int, until: int) -> int:
    n = await tick(n)
    await legato.sleep("1h")
    if n < until:
        legato.continue_as_new(n, until)
    return n


@pytest.fixture(autouse=True)
def _fresh() -> None:
    calls.clear()


def _rows(path: str, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_a_looping_workflow_keeps_two_runs_of_history_at_most(sqlite_db):
    clock = legato.VirtualClock()
    async with legato.Runtime(sqlite_db, clock=clock) as rt:
        assert await rt.run(poller, 0, 300, id="p") == 300
        info = await rt.get("p")
        assert (info.args, info.status) == ((299, 300), "succeeded")
        assert info.previous_run_id is not None and info.previous_run_id != info.run_id
        now = [(r.position, r.kind) for r in await rt.history("p")]
        before = [(r.position, r.kind) for r in await rt.history("p", info.previous_run_id)]
        assert now == before == [("1", "step"), ("2", "sleep")]
        with pytest.raises(ValueError, match="only the run before the current one is kept"):
            await rt.history("p", "some-other-run")
    assert set(calls.values()) == {1} and len(calls) == 300  # each iteration's step once
    assert _rows(sqlite_db, "steps") == 2 and _rows(sqlite_db, "previous_steps") == 2


async def test_continue_as_new_needs_arguments_that_fit_the_workflow(db):
    @legato.workflow(name="can_wrong")
    async def wrong(n: int) -> int:
        legato.continue_as_new("too", "many")
        return n

    async with legato.Runtime(db) as rt:
        with pytest.raises(TypeError):
            await rt.run(wrong, 1, id="w")
        assert (await rt.get("w")).status == "failed"


async def test_continue_as_new_on_postgresql_and_sqlite_alike(db):
    clock = legato.VirtualClock()
    async with legato.Runtime(db, clock=clock) as rt:
        assert await rt.run(poller, 0, 20, id="p") == 20
        assert [r.kind for r in await rt.history("p")] == ["step", "sleep"]


def test_continue_as_new_outside_a_workflow_is_refused():
    with pytest.raises(legato.LegatoError, match="outside a workflow"):
        legato.continue_as_new(1)


async def test_explore_finds_every_crash_around_a_continue_as_new_safe():
    report = await legato.testing.explore(poller, 0, 3)
    assert report.ok, report
    points = [str(p) for p in report.commits]
    assert sum("continue_as_new" in p for p in points) == 2


@pytest.mark.slow  # about 3 minutes: the 100,000 hourly polls, in virtual time
@pytest.mark.timeout(600)
async def test_a_hundred_thousand_iterations_keep_the_history_bounded(sqlite_db):
    clock = legato.VirtualClock()
    async with legato.Runtime(sqlite_db, clock=clock) as rt:
        assert await rt.run(poller, 0, 100_000, id="p") == 100_000
        assert [r.kind for r in await rt.history("p")] == ["step", "sleep"]
    assert len(calls) == 100_000 and set(calls.values()) == {1}
    assert _rows(sqlite_db, "steps") == 2 and _rows(sqlite_db, "previous_steps") == 2
    assert _rows(sqlite_db, "workflows") == 1
