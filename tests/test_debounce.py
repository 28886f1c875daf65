"""Debounced starts: ``rt.start(..., debounce=(key, window[, max_wait]))``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import legato
from debounce_child import debounced_echo
from legato import VirtualClock, WorkflowNotFound

TESTS = Path(__file__).parent
T0 = 1_800_000_000.0  # durable time at the start of each test


@legato.workflow(name="debounced_last")
async def last(i: int) -> int:
    return i


@legato.workflow(name="debounced_other")
async def other(i: int) -> int:
    return -i


async def _runs(rt: legato.Runtime, wf: str) -> list[legato.WorkflowInfo]:
    return await rt.list(name=wf, limit=1000)


async def test_a_burst_of_100_starts_is_one_run_with_the_last_arguments(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handles = [await rt.start(last, i, debounce=("k", "5s")) for i in range(100)]
        assert len({h.id for h in handles}) == 1
        await clock.advance(4.9)  # not a whole window since the last start
        assert await handles[0].status() == "pending"
        await clock.advance(0.1)
        assert await handles[-1].result() == 99
        runs = await _runs(rt, "debounced_last")
        assert [r.id for r in runs] == [handles[0].id]


async def test_each_start_pushes_the_run_a_window_later(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        first = await rt.start(last, 1, debounce=("k", "5s"))
        await clock.advance(3)
        await rt.start(last, 2, debounce=("k", "5s"))
        await clock.advance(3)  # past the first start's window, not the second's
        assert await first.status() == "pending"
        await clock.advance(2)
        assert await first.result() == 2


async def test_max_wait_caps_how_long_a_stream_of_starts_holds_the_run(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        first = await rt.start(last, 0, debounce=("k", "5s", "8s"))
        for i in (1, 2):
            await clock.advance(3)
            await rt.start(last, i, debounce=("k", "5s", "8s"))
        await clock.advance(1.9)  # 7.9 s after the first start
        assert await first.status() == "pending"
        await clock.advance(0.1)  # 8 s: started, though the last start was 2 s ago
        assert await first.result() == 2


async def test_a_start_after_the_run_began_begins_the_next_run(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        first = await rt.start(last, 1, debounce=("k", "5s"))
        await clock.advance(5)
        assert await first.result() == 1
        second = await rt.start(last, 2, debounce=("k", "5s"))
        assert second.id != first.id
        await clock.advance(5)
        assert await second.result() == 2


async def test_keys_are_per_workflow_and_per_key(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        a = await rt.start(last, 1, debounce=("a", "5s"))
        b = await rt.start(last, 2, debounce=("b", "5s"))
        c = await rt.start(other, 3, debounce=("a", "5s"))
        assert len({a.id, b.id, c.id}) == 3
        await clock.advance(5)
        assert [await h.result() for h in (a, b, c)] == [1, 2, -3]


async def test_the_run_keeps_the_first_starts_id(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        first = await rt.start(last, 1, id="first", debounce=("k", "5s"))
        later = await rt.start(last, 2, id="later", debounce=("k", "5s"))
        assert first.id == later.id == "first"
        with pytest.raises(WorkflowNotFound):
            await rt.get("later")
        await clock.advance(5)
        assert await later.result() == 2
        # an id taken already is that run's, as for any start: nothing is folded
        again = await rt.start(last, 3, id="first", debounce=("k2", "5s"))
        assert again.id == "first"
        assert await again.result() == 2


async def test_a_debounced_run_goes_on_its_queue(db):
    clock = VirtualClock(T0, autojump=False)
    q = legato.Queue("debounced", concurrency=1)
    async with legato.Runtime(db, clock=clock, queues=[q]) as rt:
        h = await rt.start(last, 1, queue=q, debounce=("k", "1s"))
        await rt.start(last, 2, queue=q, debounce=("k", "1s"))
        await clock.advance(1)
        assert await h.result() == 2
        assert (await rt.get(h.id)).queue == "debounced"


@pytest.mark.parametrize(("debounce", "error", "match"), [
    ("k", ValueError, r"debounce='k' is not a \(key, window\) tuple"),
    (("k",), ValueError, "is not a"),
    (("k", "1s", "2s", "3s"), ValueError, "is not a"),
    ((5, "1s"), TypeError, "the debounce key must be a str, not 5"),
    (("", "1s"), ValueError, "the debounce key can't be empty"),
    (("k", "soon"), ValueError, "the debounce window 'soon' is not a duration"),
    (("k", 0), ValueError, "the debounce window must be a positive duration, not 0"),
    (("k", "1s", None), ValueError, "the debounce max_wait None is not a duration"),
    (("k", float("inf")), ValueError, "positive duration"),
])
async def test_bad_debounce_options_are_refused_before_anything_is_stored(
        sqlite_db, debounce, error, match):
    async with legato.Runtime(sqlite_db, clock=VirtualClock(T0, autojump=False)) as rt:
        with pytest.raises(error, match=match):
            await rt.start(last, 1, debounce=debounce)
        assert await _runs(rt, "debounced_last") == []


async def test_debounce_does_not_go_with_delay_or_dedup_key(sqlite_db):
    async with legato.Runtime(sqlite_db, queues=[legato.Queue("q")]) as rt:
        with pytest.raises(ValueError, match="debounce= and delay= can't go together"):
            await rt.start(last, 1, debounce=("k", "1s"), delay="1s")
        with pytest.raises(ValueError, match="debounce= and dedup_key= can't go together"):
            await rt.start(last, 1, queue="q", debounce=("k", "1s"), dedup_key="d")
        assert await _runs(rt, "debounced_last") == []


def _burst_from_two_processes(db: str) -> list[list[str]]:
    """Each of two client processes starts 50 runs on one key at once; the ids each got."""
    procs = [subprocess.Popen(
        [sys.executable, str(TESTS / "debounce_child.py"), db, repr(T0), tag],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for tag in ("a", "b")]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:  # both burst at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        return [p.communicate(timeout=30)[0].split() for p in procs]
    finally:
        for p in procs:
            p.kill()


async def test_two_processes_bursting_on_one_key_make_one_run(db):
    outputs = await asyncio.to_thread(_burst_from_two_processes, db)
    assert [len(o) for o in outputs] == [50, 50], outputs
    ids = {i for o in outputs for i in o}
    assert len(ids) == 1, "the processes made more than one run"
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        (run_id,) = ids
        assert await rt.handle(run_id).status() == "pending"
        await clock.advance(5)
        assert await rt.handle(run_id, debounced_echo).result() in (["a", 49], ["b", 49])
        assert [r.id for r in await _runs(rt, "debounced_echo")] == [run_id]


@legato.workflow(name="debounced_fails_once")
async def fails_once(i: int) -> int:
    if legato.workflow_id() not in _FAILED:
        _FAILED.add(legato.workflow_id())
        raise RuntimeError("first run fails")
    return i


_FAILED: set[str] = set()


async def test_a_resumed_run_takes_no_more_starts_into_it(db):
    clock = VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        first = await rt.start(fails_once, 1, debounce=("k", "5s"))
        await clock.advance(5)
        with pytest.raises(RuntimeError):
            await first.result()
        await rt.resume(first.id)  # pending again, under a new run id
        second = await rt.start(fails_once, 2, debounce=("k", "5s"))
        assert second.id != first.id
        assert await first.result() == 1  # with its own arguments
        await clock.advance(5)
        with pytest.raises(RuntimeError):
            await second.result()
