"""Cron schedules across real worker processes: each tick runs once whatever the number of
workers, and a worker SIGKILLed at a tick leaves it to run exactly once elsewhere.

The workers run ``tests/schedule_child.py``: durable time jumps from ``T0`` up
to a horizon, so the number of ticks is known.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import legato
from polling import eventually
from schedule_workflows import MINUTE, T0, run_at, tick_at

CHILD = Path(__file__).parent / "schedule_child.py"


async def _succeeded(rt: legato.Runtime, name: str) -> list[str]:
    return sorted(w.id for w in await rt.list(name=name, status="succeeded", limit=1000))


@pytest.mark.parametrize("ticks", [20, pytest.param(50, marks=pytest.mark.slow)])
async def test_two_worker_processes_start_each_tick_exactly_once(db, child, tmp_path, ticks):
    go = tmp_path / "go"
    async with legato.Runtime(db, clock=legato.VirtualClock(T0), worker=False) as rt:
        await rt.schedule("sched_tick", MINUTE, name="fleet", overlap="allow")
        workers = [child(db, str(tick_at(ticks)), script=CHILD,
                         env={"LEGATO_SCHED_GO": str(go)}) for _ in range(2)]
        for w in workers:
            w.wait_for("ready")
        go.touch()  # both tick from here on, racing for each tick
        expected = [run_at("fleet", k) for k in range(1, ticks + 1)]
        await eventually(lambda: _has(rt, "sched_tick", expected), timeout=30)
        assert await _succeeded(rt, "sched_tick") == expected  # no tick twice, none past the end
        (s,) = await rt.schedules()
        assert s.next_tick == datetime.fromtimestamp(tick_at(ticks + 1), UTC)


async def _has(rt: legato.Runtime, name: str, ids: list[str]) -> bool:
    return set(await _succeeded(rt, name)) >= set(ids)


async def test_a_worker_killed_at_a_tick_leaves_it_to_run_exactly_once(db, child):
    async with legato.Runtime(db, clock=legato.VirtualClock(T0), worker=False) as client:
        await client.schedule("sched_hang", MINUTE, name="kill")
    doomed = child(db, str(tick_at(1)), script=CHILD, env={"LEGATO_SCHED_HANG": "1"})
    doomed.wait_for(f"started {run_at('kill', 1)}")  # the tick's run is in its step
    doomed.kill()
    clock = legato.VirtualClock(tick_at(1) + 10, autojump=False)  # no further tick
    async with legato.Runtime(db, clock=clock) as rt:  # takes the run over once its lease lapses
        await rt.handle(run_at("kill", 1)).result(timeout=20)
        assert [w.id for w in await rt.list(name="sched_hang")] == [run_at("kill", 1)]
        (s,) = await rt.schedules()
        assert (s.last_run, s.next_tick) == (run_at("kill", 1),
                                             datetime.fromtimestamp(tick_at(2), UTC))


async def test_a_decorated_schedule_is_stored_by_the_worker_that_has_the_code(db, child):
    worker = child(db, str(tick_at(10)), "decorated", script=CHILD)  # one tick: at 08:10
    worker.wait_for("ready")
    async with legato.Runtime(db, worker=False) as rt:
        (s,) = await rt.schedules()
        assert (s.name, s.workflow, s.cron, s.timezone, s.overlap, s.catch_up) == (
            "sched_every_ten", "sched_every_ten", "*/10 * * * *", "UTC", "skip", "latest")
        first = run_at("sched_every_ten", 10)
        await eventually(lambda: _has(rt, "sched_every_ten", [first]), timeout=20)
        assert await rt.handle(first).result() == "2027-01-15T08:10:00+00:00"
        assert await _succeeded(rt, "sched_every_ten") == [first]
