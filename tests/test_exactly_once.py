"""Exactly once: the ways a committed step could run again, or a replay take another path.

Each test is named after the behaviour that broke: a signal lost by a losing
arm, a position shifted by a task the interpreter made, ``patched()`` before a
branch, a recorded value used before it was committed, asyncio's timing
decisions, cancellation from odd places, steps that ignore their timeout or
raise ``BaseException``, and two workflows under one name.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

import legato
from polling import eventually, status_is

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@legato.step
async def note(what: str) -> str:
    calls[what] += 1
    return what


# -- 1. a losing arm gives its signal back ---------------------------------------------


@legato.workflow(name="eo_select_two_signals")
async def select_two_signals() -> list[Any]:
    first = await legato.select(a=legato.wait_for_signal("x"), b=legato.wait_for_signal("x"))
    second = await legato.wait_for_signal("x", timeout=60)
    return [first.name, first.value, second]


@legato.workflow(name="eo_race_two_signals")
async def race_two_signals() -> list[Any]:
    first = await legato.race(legato.wait_for_signal("x"), legato.wait_for_signal("x"))
    second = await legato.wait_for_signal("x", timeout=60)
    return [first, second]


@pytest.mark.parametrize("wf", [select_two_signals, race_two_signals], ids=["select", "race"])
async def test_a_losing_arm_over_a_buffered_signal_gives_it_back(db, wf):
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock, worker=False) as client:
        await client.start(wf, id="sig")
        await client.signal("sig", "x", 1)  # both buffered before the workflow runs
        await client.signal("sig", "x", 2)
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.handle("sig").result(timeout=10)
    # the winner's signal, then the loser's (not a timeout): each exactly once; which arm
    # took which depends on timing (PostgreSQL takes them on two connections)
    assert sorted(result[-2:]) == [1, 2]


# -- 2. a task the interpreter makes takes no position ---------------------------------


async def numbers() -> AsyncIterator[int]:
    try:
        for i in range(3):
            yield i
    finally:
        await asyncio.sleep(0)  # the aclose() task has something to run


@legato.workflow(name="eo_agen_break")
async def agen_break() -> str:
    async for _ in numbers():
        break  # the generator is closed later, by a task the event loop makes
    await asyncio.sleep(0)
    await note("invoice")
    await legato.wait_for_signal("go")
    return await note("done")


async def test_an_async_generator_left_early_shifts_no_position(db):
    async with legato.Runtime(db, suspend_after=3600) as rt:
        await rt.start(agen_break, id="agen")
        await eventually(lambda: calls["invoice"] == 1)
    # shutdown mid-wait; the next runtime replays everything from the top
    async with legato.Runtime(db) as rt:
        await rt.signal("agen", "go")
        assert await rt.handle("agen").result(timeout=10) == "done"
    assert calls == {"invoice": 1, "done": 1}


@legato.workflow(name="eo_shifted")
async def shifted_v1() -> str:
    task = asyncio.create_task(note("side"))
    await note("invoice")
    await task
    await legato.wait_for_signal("go")
    return "v1"


async def test_a_shifted_position_is_a_nondeterminism_error_not_a_second_run(db):
    async with legato.Runtime(db, suspend_after=0) as rt:
        handle = await rt.start(shifted_v1, id="shift")
        await eventually(status_is(handle, "waiting"))

    @legato.workflow(name="eo_shifted")
    async def shifted_v2() -> str:  # the task is gone: "invoice" moves to position 1
        await note("invoice")
        await legato.wait_for_signal("go")
        return "v2"

    try:
        async with legato.Runtime(db) as rt:
            await rt.signal("shift", "go")
            with pytest.raises(legato.NonDeterminismError, match="position 1"):
                await rt.handle("shift").result(timeout=10)
    finally:
        legato.workflow(name="eo_shifted")(shifted_v1.fn)
    assert calls["invoice"] == 1


# -- 3. patched() sees a history that went past it -------------------------------------


@legato.workflow(name="eo_patch_branch")
async def patch_branch_v1() -> str:
    await asyncio.gather(note("a"), note("b"))
    await legato.wait_for_signal("go")
    return "old"


@legato.workflow(name="eo_patch_wait")
async def patch_wait_v1() -> str:
    await legato.wait_for_signal("go")
    return "old"


@pytest.mark.parametrize("v1", [patch_branch_v1, patch_wait_v1], ids=["branch", "wait"])
async def test_patched_is_false_for_a_run_whose_history_went_past_it(db, v1):
    async with legato.Runtime(db, suspend_after=0) as rt:
        handle = await rt.start(v1, id="p")
        await eventually(status_is(handle, "waiting"))
    before = dict(calls)

    async def v2() -> str:
        if legato.patched("new-first-step"):
            await note("new")
            return "new"
        return await v1.fn()

    legato.workflow(name=v1.name)(v2)
    try:
        async with legato.Runtime(db) as rt:
            await rt.signal("p", "go")
            assert await rt.handle("p").result(timeout=10) == "old"
            fresh = await rt.run(legato.workflow(name=v1.name)(v2), id="p-new")
    finally:
        legato.workflow(name=v1.name)(v1.fn)
    assert fresh == "new"
    assert calls["new"] == 1 and {k: calls[k] for k in before} == before  # nothing re-ran


# -- 4. a recorded value is committed before anything can use it -----------------------


@legato.step
def charge(key: str, db_path: str) -> int:
    # a separate connection: sees only what is committed
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM steps WHERE workflow_id = 'pay' AND kind = 'uuid4'").fetchone()
    return int(count)


@legato.workflow(name="eo_uuid_then_charge")
async def uuid_then_charge(db_path: str) -> int:
    key = str(legato.uuid4())
    return await charge(key, db_path)


async def test_a_recorded_value_is_committed_before_the_next_step_runs(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.run(uuid_then_charge, sqlite_db, id="pay") == 1


# -- 7. asyncio's timing decisions -----------------------------------------------------


@legato.step
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow"


@legato.workflow(name="eo_wait_for")
async def wait_for_a_slow_step() -> str:
    try:
        return await asyncio.wait_for(slow(3600), timeout=60)
    except TimeoutError:
        return await note("timed out")


async def test_asyncio_wait_for_in_a_workflow_records_whether_it_timed_out(db):
    clock = legato.VirtualClock(start=0.0)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(wait_for_a_slow_step, id="wf")
        assert await handle.result(timeout=10) == "timed out"
        kinds = [s.kind for s in (await rt.get("wf")).steps]
    assert "timeout" in kinds  # the decision, replayed the same way whatever the timings


@legato.workflow(name="eo_asyncio_timeout")
async def uses_asyncio_timeout() -> str:
    async with asyncio.timeout(5):
        return await note("inside")


async def test_asyncio_timeout_in_a_workflow_is_refused_naming_legato_timeout(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.LegatoError, match=r"legato\.timeout"):
            await rt.run(uses_asyncio_timeout, id="to")
    assert calls["inside"] == 0
    async with asyncio.timeout(5):  # outside workflows it is asyncio's own
        await asyncio.sleep(0)


@legato.workflow(name="eo_first_completed")
async def first_completed() -> str:
    fast = asyncio.create_task(note("fast"))
    never = asyncio.create_task(legato.wait_for_signal("never"))
    done, pending = await asyncio.wait([fast, never], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await legato.wait_for_signal("go")
    return "fast" if fast in done else "never"


async def test_asyncio_wait_first_completed_is_recorded_and_replayed(db):
    async with legato.Runtime(db, suspend_after=0) as rt:
        handle = await rt.start(first_completed, id="fc")
        await eventually(status_is(handle, "waiting"))
        assert ("3", "wait") in [(s.position, s.kind) for s in (await rt.get("fc")).steps]
    async with legato.Runtime(db) as rt:  # the replay waits for the recorded task only
        await rt.signal("fc", "go")
        assert await rt.handle("fc").result(timeout=10) == "fast"
    assert calls["fast"] == 1


# -- 8. cancellation from odd places ---------------------------------------------------


@legato.workflow(name="eo_finally_at_shutdown")
async def finally_at_shutdown() -> str:
    try:
        await asyncio.gather(legato.wait_for_signal("go"))  # a branch: stays in memory
    finally:
        await note("cleanup")
    return "done"


async def test_shutdown_unwinds_like_suspension_and_records_nothing_in_finally(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(finally_at_shutdown, id="sd")
        await eventually(lambda: "sd" in rt._worker.runs)  # type: ignore[union-attr]
        await eventually(status_is(handle, "running"))
    assert calls["cleanup"] == 0  # skipped while unwinding for shutdown
    async with legato.Runtime(db) as rt:
        await rt.signal("sd", "go")
        assert await rt.handle("sd").result(timeout=10) == "done"
    assert calls["cleanup"] == 1


@legato.workflow(name="eo_napper")
async def napper() -> str:
    await legato.sleep("1h")
    return "woke"


@legato.workflow(name="eo_cancels_own_task")
async def cancels_its_own_task() -> str:
    task = asyncio.create_task(napper())
    await asyncio.sleep(0)
    task.cancel()
    await task
    return "unreachable"


async def test_a_workflow_awaiting_a_task_it_cancelled_ends_cancelled_with_its_child(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(cancels_its_own_task, id="own")
        with pytest.raises(legato.WorkflowCancelled):
            await handle.result(timeout=10)
        children = [w for w in await rt.list() if w.id.startswith("own/")]
        for child in children:
            await eventually(status_is(rt.handle(child.id), "cancelled"))
    assert await handle_status(db, "own") == "cancelled"


async def handle_status(db: str, workflow_id: str) -> str:
    async with legato.Runtime(db, worker=False) as rt:
        return str(await rt.handle(workflow_id).status())


@legato.workflow(name="eo_race_a_child")
async def race_a_child() -> str:
    return await legato.race(napper(), legato.sleep(60, result="timer"))


async def test_cancelling_the_wait_for_a_child_cancels_the_child(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        handle = await rt.start(race_a_child, id="rc")
        async def child_sleeps() -> bool:  # unloaded for its 1 h sleep
            return any(w.id == "rc/1.0.1" and w.status == "waiting" for w in await rt.list())

        await eventually(child_sleeps)
        await clock.advance(61)  # the race's timer (a sleep at or before 61 s) wins
        assert await handle.result(timeout=10) == "timer"
        await eventually(status_is(rt.handle("rc/1.0.1"), "cancelled"))


@legato.step
async def book() -> str:
    calls["book"] += 1
    return "booking"


@legato.workflow(name="eo_saga_in_timeout")
async def saga_in_a_timeout() -> str:
    async def trip() -> str:
        async with legato.saga() as saga:
            await book()
            saga.compensate(note, "unbook")
            await legato.sleep(3600)
        return "booked"

    return str(await legato.timeout(60, trip(), default="timed out"))


async def test_a_saga_cancelled_by_a_timeout_compensates(db):
    async with legato.Runtime(db, clock=legato.VirtualClock(start=0.0)) as rt:
        assert await rt.run(saga_in_a_timeout, id="st") == "timed out"
    assert calls == {"book": 1, "unbook": 1}


@legato.workflow(name="eo_swallows")
async def swallows_the_suspension() -> str:
    try:
        await legato.sleep("1d")
    except BaseException:  # the mistake under test
        return "swallowed"
    return "slept"


async def test_swallowing_the_suspension_still_unloads_the_workflow(db):
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(db, clock=clock, suspend_after=0) as rt:
        handle = await rt.start(swallows_the_suspension, id="sw")
        await eventually(status_is(handle, "waiting"))
        await clock.advance(86400)
        assert await handle.result(timeout=10) == "slept"


# -- 9, 10. steps that ignore their timeout or raise BaseException ----------------------


@legato.step(timeout=0.05)
async def stubborn() -> str:
    with contextlib.suppress(asyncio.CancelledError):  # ignores it, returns a value anyway
        await asyncio.sleep(3600)
    return "finished anyway"


@legato.workflow(name="eo_stubborn")
async def stubborn_workflow() -> str:
    try:
        return await stubborn()
    except TimeoutError:
        return "timed out"


async def test_a_step_timeout_holds_when_the_step_ignores_cancellation(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(stubborn_workflow, id="stub") == "timed out"


class Fatal(BaseException):
    pass


@legato.step
async def exits(kind: str) -> None:
    calls[kind] += 1
    raise SystemExit(3) if kind == "exit" else Fatal("custom")


@legato.workflow(name="eo_base_exception")
async def base_exception(kind: str) -> str:
    try:
        await exits(kind)
    except legato.StepFailed as exc:
        return exc.type_name
    return "no error"


@pytest.mark.parametrize("kind", ["exit", "custom"])
async def test_a_step_raising_base_exception_is_its_recorded_failure(db, kind):
    async with legato.Runtime(db) as rt:
        result = await rt.run(base_exception, kind, id=f"be-{kind}")
        # the worker lives on: another workflow runs
        assert await rt.run(stubborn_workflow, id=f"after-{kind}") == "timed out"
    async with legato.Runtime(db) as rt:
        assert await rt.handle(f"be-{kind}").result(timeout=5) == result
    assert result.endswith("SystemExit" if kind == "exit" else "Fatal")
    assert calls[kind] == 1


# -- 11. one name, one workflow ----------------------------------------------------------


def test_two_functions_under_one_default_name_is_an_error() -> None:
    namespace: dict[str, Any] = {"legato": legato, "__name__": "billing"}
    source = "@legato.workflow\nasync def eo_process() -> None: ...\n"
    exec(compile(source, "orders.py", "exec"), {**namespace, "__name__": "orders"})
    with pytest.raises(ValueError, match=r"orders\.eo_process.*billing\.eo_process.*name="):
        exec(compile(source, "billing.py", "exec"), namespace)
    # the same code imported again (a reload) replaces itself quietly
    exec(compile(source, "orders.py", "exec"), {**namespace, "__name__": "orders"})
