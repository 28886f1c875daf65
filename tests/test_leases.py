"""Leases under machine faults (issue 13 items 3, 6, 7, 8, 9).

A workflow is run by one attempt at a time: its row names the attempt that
holds it, a heartbeat thread renews only the rows of runs still going, on the
store's clock, and through a stall of the event loop up to ``stall_limit``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import fleet_workflows
import legato
from fleet import Fleet
from fleet_workflows import runners, runs
from legato.store import NewWorkflow
from polling import eventually

calls: dict[str, int] = {}


@legato.step
async def counted(tag: str) -> str:
    calls[tag] = calls.get(tag, 0) + 1
    return tag


@legato.workflow(name="ls_once")
async def once(tag: str) -> str:
    return await counted(tag)


@legato.workflow(name="ls_waits")
async def waits() -> str:
    await legato.wait_for_signal("never")
    return "signalled"


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


async def test_a_row_of_ours_that_no_task_runs_lapses_and_is_run(db):
    # as after a `finish` that failed: running, owned by this worker, no task
    async with legato.Runtime(db, lease=0.3) as rt:
        stale = f"{rt.worker_id}#0"
        assert await rt.store.create(NewWorkflow(
            "orphan", "ls_once", rt.serializer.dumps({"args": ["o"], "kwargs": {}}),
            stale, time.time() + 0.3)) is None
        assert await rt.handle("orphan").result(timeout=10) == "o"
    assert calls == {"o": 1}


async def test_a_start_cancelled_midway_leaves_no_stored_run_behind(db):
    async with legato.Runtime(db) as rt:
        for turns in range(12):  # cancelled before, during and after the insert
            caller = asyncio.create_task(rt.start(once, f"c{turns}", id=f"c{turns}"))
            for _ in range(turns):
                await asyncio.sleep(0)
            caller.cancel()
            await asyncio.gather(caller, return_exceptions=True)
        for turns in range(12):
            handle = rt.handle(f"c{turns}")
            try:
                status = await handle.status()
            except legato.WorkflowNotFound:
                continue  # cancelled before anything was stored
            assert status in ("running", "succeeded")
            assert await handle.result(timeout=10) == f"c{turns}"
    assert set(calls.values()) <= {1}


async def test_a_cancel_racing_the_unload_of_a_waiting_workflow_is_not_lost(db):
    async with legato.Runtime(db, suspend_after=0) as rt:
        for n in range(20):
            handle = await rt.start(waits, id=f"w{n}")
            for _ in range(n % 5):
                await asyncio.sleep(0)
            await rt.cancel(f"w{n}")
            with pytest.raises(legato.WorkflowCancelled):
                await handle.result(timeout=10)


async def test_a_lapsed_lease_of_a_run_going_on_here_is_not_claimed_back(sqlite_db):
    release = asyncio.Event()

    @legato.step
    async def held() -> str:
        calls["held"] = calls.get("held", 0) + 1
        await release.wait()
        return "done"

    @legato.workflow(name="ls_held")
    async def holder() -> str:
        return await held()

    async with legato.Runtime(sqlite_db) as rt:
        handle = await rt.start(holder, id="h")
        await eventually(lambda: calls.get("held") == 1)
        # its lease lapses under the running task (a renewal came late, a stall). Taking
        # the row back as a new attempt would refuse the task's checkpoint in flight (the
        # task unwound, the row lapsed again, and another worker ran the step again)
        before = (await rt.get("h")).attempt
        rt.store._writer.execute("UPDATE workflows SET lease_until = 0 WHERE id = 'h'")  # type: ignore[attr-defined]
        # a queued run is started by the claim loop: once it ran, a claim saw the lapse
        assert await rt.run(once, "after", queue=legato.Queue("ls_q")) == "after"
        assert (await rt.get("h")).attempt == before
        release.set()
        assert await handle.result(timeout=10) == "done"
    assert calls == {"held": 1, "after": 1}


# -- several processes ----------------------------------------------------------------------


async def test_a_worker_whose_clock_is_ahead_takes_no_live_workflow(pg_url, tmp_path, fleet_log):
    honest = Fleet(pg_url, tmp_path / "honest", 1, concurrency=50, step_seconds=0.3)
    ahead = Fleet(pg_url, tmp_path / "ahead", 1, concurrency=50, step_seconds=0.3,
                  env={"LEGATO_TEST_CLOCK_SKEW": "10"})
    try:
        await honest.ready()
        await ahead.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            handles = [await client.start(fleet_workflows.five_steps, f"k{n}", id=f"k{n}")
                       for n in range(20)]
            results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
    finally:
        honest.stop()
        ahead.stop()
    assert results == [[1, 2, 3, 4, 5]] * 20
    assert set(runs(fleet_log).values()) == {1}  # no step ran twice: no lease was stolen
    assert len({pid for pids in runners(fleet_log).values() for pid in pids}) == 2  # both ran


async def test_a_worker_keeps_its_workflows_through_a_loop_stall(db, tmp_path, fleet_log):
    url = db
    fleet = Fleet(url, tmp_path / "w", 2, concurrency=10)  # lease 1 s: a stall of 4 leases
    try:
        await fleet.ready()
        async with legato.Runtime(url, worker=False) as client:
            pid = await client.run(fleet_workflows.blocker, "b", 4.0, id="b")
    finally:
        fleet.stop()
    assert runners(fleet_log) == {"b-1": [pid]}  # ran once, where it stalled
    log = next(err for err, p in zip(fleet.logs, fleet.procs, strict=True) if p.pid == pid)
    warning = log.read_text()
    assert "blocked for" in warning and "step 'blocking_step'" in warning
    assert "workflow 'b'" in warning


async def test_a_worker_stalled_past_its_stall_limit_loses_its_workflows(
        pg_url, tmp_path, fleet_log):
    fleet = Fleet(pg_url, tmp_path / "w", 2, concurrency=10, args=("--stall-limit", "1.5"))
    try:
        await fleet.ready()
        async with legato.Runtime(pg_url, worker=False) as client:
            started = time.monotonic()
            pid = await client.run(fleet_workflows.blocker, "b", 30.0, id="b")
            took = time.monotonic() - started
    finally:
        fleet.stop()
    (first, second) = runners(fleet_log)["b-1"]
    assert first != second == pid  # taken over while the first was stuck
    assert took < 10



# -- workflows no worker knows (item 12) ----------------------------------------------------


@legato.workflow(name="ls_unknown_to_the_fleet")
async def unknown_to_the_fleet() -> str:
    return "never"


async def test_a_workflow_no_worker_knows_is_named_by_the_worker_and_the_result(
        db, tmp_path, fleet_log):
    async with legato.Runtime(db, worker=False) as client:
        handle = await client.start(unknown_to_the_fleet, id="u")
        with pytest.raises(legato.WorkflowTimeout, match="no worker is serving it"):
            await handle.result(timeout=0.1)
        fleet = Fleet(db, tmp_path / "w", 1, concurrency=10)
        try:
            await fleet.ready()
            (alive,) = [w for w in await client.workers() if w.alive]
            assert "fleet_five" in alive.workflows
            with pytest.raises(legato.WorkflowTimeout, match=(
                    r"still pending: no worker serving this store knows workflow "
                    r"'ls_unknown_to_the_fleet' \(.* serves .*fleet_five")):
                await handle.result(timeout=0.1)
            await eventually(lambda: "ls_unknown_to_the_fleet" in fleet.logs[0].read_text())
        finally:
            fleet.procs[0].terminate()  # a clean stop: the worker is forgotten
            fleet.procs[0].wait()
        assert await client.workers() == []
    assert fleet.logs[0].read_text().count("'ls_unknown_to_the_fleet' are pending") == 1
