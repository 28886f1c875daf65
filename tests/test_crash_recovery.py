"""Crash safety with real processes: SIGKILL a worker, recover on the same file."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

import crash_workflows
import legato
from crash_workflows import ran


def checkpointed(sqlite_db: str, workflow_id: str) -> set[str]:
    with sqlite3.connect(sqlite_db) as conn:
        rows = conn.execute(
            "SELECT value FROM steps WHERE workflow_id = ? AND kind = 'step'", (workflow_id,)
        ).fetchall()
    import orjson

    return {orjson.loads(v) for (v,) in rows if isinstance(orjson.loads(v), str)}


async def test_sigkill_after_step_4_resumes_from_checkpoint(sqlite_db, log, child):
    worker = child(sqlite_db, "ten_steps", "crash-1", env={"LEGATO_TEST_HANG_AFTER": "4"})
    worker.wait_for("step-5")  # steps 1-4 are checkpointed before step 5 starts
    worker.kill()
    killed_at = time.monotonic()
    with sqlite3.connect(sqlite_db) as conn:
        (run_before,) = conn.execute("SELECT run_id FROM workflows").fetchone()

    async with legato.Runtime(sqlite_db) as rt:
        result = await rt.handle("crash-1").result(timeout=10)
        recovered_in = time.monotonic() - killed_at
        info = await rt.get("crash-1")

    assert result == [i * i for i in range(1, 11)]
    counts = ran(log)
    assert all(counts[f"step-{i}"] == 1 for i in range(1, 5)), counts
    assert counts["step-5"] == 2  # in flight at the kill: ran again
    assert all(counts[f"step-{i}"] == 1 for i in range(6, 11)), counts
    assert info.status == legato.Status.SUCCEEDED
    assert [s.position for s in info.steps] == [str(i) for i in range(1, 11)]
    assert recovered_in < 1.5 + 1.5  # the lease, plus the work itself
    assert info.run_id == run_before  # recovery continues the same run


async def test_concurrent_branches_replay_whatever_order_they_finish(sqlite_db, log, child):
    worker = child(sqlite_db, "three_branches", "crash-2", env={"LEGATO_TEST_HANG_AFTER": "4"})
    for _ in range(5):  # four bodies finish, the fifth hangs
        worker.next_line()
    await asyncio.sleep(0.05)  # let the four commit (their sleeps are ≤ 30 ms)
    worker.kill()
    done_before_kill = checkpointed(sqlite_db, "crash-2")
    assert 1 <= len(done_before_kill) <= 4

    async with legato.Runtime(sqlite_db) as rt:
        result = await rt.handle("crash-2").result(timeout=10)

    assert result == [["a1", "a2", "a3"], ["b1", "b2", "b3"], ["c1", "c2", "c3"]]
    counts = ran(log)
    for name in done_before_kill:
        assert counts[name] == 1, f"{name} was checkpointed yet ran again: {counts}"
    assert set(counts) == {f"{b}{i}" for b in "abc" for i in (1, 2, 3)}
    assert max(counts.values()) <= 2


async def test_changed_code_after_a_crash_is_a_nondeterminism_error(sqlite_db, log, child):
    worker = child(sqlite_db, "evolving", "crash-3", env={"LEGATO_TEST_HANG_AFTER": "2"})
    worker.wait_for("third")  # "first" and "second" are checkpointed at 1 and 2
    worker.kill()
    original = crash_workflows.evolving
    try:

        @legato.workflow(name="evolving")
        async def evolving_v2() -> list[str]:
            first = await crash_workflows.named("first")
            legato.random()  # a recorded call where the history has a step
            return [first, await crash_workflows.named("second")]

        async with legato.Runtime(sqlite_db) as rt:
            with pytest.raises(legato.NonDeterminismError) as caught:
                await rt.handle("crash-3").result(timeout=10)
            info = await rt.get("crash-3")
    finally:
        legato.workflow(name="evolving")(original.fn)

    error = caught.value
    assert error.position == "2"
    assert "position 2" in str(error)
    assert "step 'named'" in str(error) and "random" in str(error)
    assert info.status == legato.Status.FAILED
    assert "NonDeterminismError" in (info.error or "")
    assert ran(log)["first"] == 1  # replayed, not run again


async def test_a_live_worker_keeps_its_workflows(sqlite_db, log, child):
    worker = child(sqlite_db, "ten_steps", "alive-1", env={"LEGATO_TEST_HANG_AFTER": "2"})
    worker.wait_for("step-3")
    async with legato.Runtime(sqlite_db, lease=0.5):
        await asyncio.sleep(3 * 1.5)  # well past the worker's lease, were it not renewed
    with sqlite3.connect(sqlite_db) as conn:
        owner, status = conn.execute(
            "SELECT owner, status FROM workflows WHERE id = 'alive-1'").fetchone()
    assert worker.proc.poll() is None
    assert status == "running" and owner.split(":")[1] == str(worker.proc.pid)
    assert ran(log)["step-3"] == 1  # never started a second time here


async def test_a_recorded_race_decision_survives_sigkill_with_timings_reversed(
        sqlite_db, log, child, monkeypatch):
    # First run: the tortoise is slow, the hare wins; "after" hangs.
    worker = child(sqlite_db, "racer", "race-1",
                   env={"LEGATO_TEST_HANG_AFTER": "2", "LEGATO_TEST_SLOW": "tortoise"})
    worker.wait_for("after")
    worker.kill()
    # Recovery: timings reversed. The recorded winner must still be the hare.
    monkeypatch.setenv("LEGATO_TEST_SLOW", "hare")
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.handle("race-1").result(timeout=10) == ["hare", "after"]
        kinds = {s.position: s.kind for s in (await rt.get("race-1")).steps}
    assert kinds == {"1": "race", "1.1.1": "step", "2": "step"}  # branch 1: the hare
    assert ran(log) == {"tortoise": 1, "hare": 1, "after": 2}  # no branch re-ran
