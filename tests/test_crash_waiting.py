"""SIGKILL while a workflow sleeps, waits for a signal, or compensates."""

from __future__ import annotations

import sqlite3
import time

import pytest

import crash_workflows
import legato
from crash_workflows import ran


def recorded_kinds(sqlite_db: str, workflow_id: str) -> list[str]:
    with sqlite3.connect(sqlite_db) as conn:
        return [k for (k,) in conn.execute(
            "SELECT kind FROM steps WHERE workflow_id = ? ORDER BY created_at", (workflow_id,))]


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)  # polling another process's database: there is no event to await


async def test_sigkill_during_a_sleep_wakes_at_the_recorded_time(sqlite_db, log, child):
    worker = child(sqlite_db, "sleeper", "sleep-1")
    worker.wait_for("before")
    wait_until(lambda: "sleep" in recorded_kinds(sqlite_db, "sleep-1"))
    slept_at = time.time()
    worker.kill()
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.handle("sleep-1").result(timeout=10) == "after"
        info = await rt.get("sleep-1")
    after = next(s for s in info.steps if s.position == "3")
    woke = after.at.timestamp() - slept_at
    assert 0.9 < woke < 1.0 + 1.5 + 0.5  # the recorded 1 s, not restarted; lease 1.5 s
    assert ran(log) == {"before": 1, "after": 1}


async def test_sigkill_during_a_signal_wait_and_the_signal_sent_while_no_worker_runs(
        sqlite_db, log, child):
    worker = child(sqlite_db, "signalled", "sig-1")
    worker.wait_for("asked")
    wait_until(lambda: recorded_kinds(sqlite_db, "sig-1") == ["step", "started"])  # waiting
    worker.kill()
    async with legato.Runtime(sqlite_db, worker=False) as client:
        await client.signal("sig-1", "go", "yes")
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.handle("sig-1").result(timeout=10) == "got-yes"
        kinds = [s.kind for s in (await rt.get("sig-1")).steps]
    assert kinds == ["step", "signal", "step"]
    assert ran(log) == {"asked": 1, "got-yes": 1}


async def test_sigkill_during_compensation_resumes_without_repeating_one(sqlite_db, log, child):
    # bodies: flight, hotel, car (fails), cancel-hotel, then cancel-flight hangs
    worker = child(sqlite_db, "trip_saga", "saga-1", env={"LEGATO_TEST_HANG_AFTER": "4"})
    worker.wait_for("cancel-flight")
    worker.kill()
    async with legato.Runtime(sqlite_db) as rt:
        with pytest.raises(crash_workflows.CarUnavailable, match="no cars left"):
            await rt.handle("saga-1").result(timeout=10)
    counts = ran(log)
    assert counts == {"flight": 1, "hotel": 1, "car": 1, "cancel-hotel": 1, "cancel-flight": 2}
    lines = log.read_text().split()
    assert lines.index("cancel-hotel") < lines.index("cancel-flight")
