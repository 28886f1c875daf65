"""spawn() and Future: eager start, states, cancellation, lists and mappings."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from flow_helpers import value

from legato.flow import Cancelled, Completed, Failed, Future, Pending, Results, spawn


async def fail(exc: BaseException) -> object:
    await asyncio.sleep(0)
    raise exc


async def test_states() -> None:
    gate = asyncio.Event()

    async def waits() -> str:
        await gate.wait()
        return "v"

    f = spawn(waits())
    assert isinstance(f, Future)
    assert f.state == Pending() and not f.done()
    assert repr(f) == "<legato.Future Pending()>"
    with pytest.raises(asyncio.InvalidStateError):
        f.result()
    gate.set()
    assert await f == "v"
    assert f.state == Completed("v") and f.done() and f.result() == "v"
    assert await f == "v"  # awaiting again is fine

    error = ValueError("x")
    g = spawn(fail(error))
    with pytest.raises(ValueError):
        await g
    assert g.state == Failed(error)

    h = spawn(waits())
    gate.clear()
    assert h.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await h
    assert h.state == Cancelled() and not h.cancel()


async def test_reading_a_failed_state_counts_as_handling_it() -> None:
    f = spawn(fail(KeyError("never awaited, but looked at")))
    for _ in range(3):  # fail() takes one turn, the task's completion another
        await asyncio.sleep(0)
    match f.state:
        case Failed(KeyError()):
            pass
        case other:
            pytest.fail(f"unexpected {other}")
    del f  # the hygiene fixture checks that nothing logs "never retrieved"


async def test_many_awaiters() -> None:
    f = spawn(value(7))
    assert await asyncio.gather(f, f, asyncio.ensure_future(f)) == [7, 7, 7]


async def test_cancelling_the_awaiter_cancels_the_future_like_a_task() -> None:
    never = asyncio.Event()
    f = spawn(never.wait())
    waiter = asyncio.ensure_future(f)
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert f.state == Cancelled()


async def test_spawn_list_tuple_generator_and_mapping() -> None:
    assert await spawn([value(1), value(2)]) == [1, 2]
    assert await spawn(value(i) for i in range(3)) == [0, 1, 2]
    named = await spawn({"a": value(1), "b": value(2)})
    assert isinstance(named, Results) and named.a == 1 and named.b == 2


async def test_spawn_list_fails_like_parallel() -> None:
    never = asyncio.Event()
    f = spawn([never.wait(), fail(ValueError("first"))])
    with pytest.raises(ValueError, match="first"):
        await f


async def test_spawn_of_futures_and_tasks() -> None:
    f = spawn(value(1))
    assert spawn(f) is f
    task = asyncio.ensure_future(value(2))
    assert await spawn(task) == 2


async def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="did you pass a function"):
        spawn(value)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        spawn(3)  # type: ignore[call-overload]


def test_spawn_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        spawn(value(1))  # and the coroutine is closed: no "never awaited"
