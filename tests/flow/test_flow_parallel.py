"""parallel(): forms, argument order, fail-fast, return_exceptions, limit."""

from __future__ import annotations

import asyncio

import pytest
from flow_helpers import no_tasks_left, value

from legato.flow import Results, parallel, spawn


async def after(event: asyncio.Event, x: object) -> object:
    await event.wait()
    return x


async def fail(exc: BaseException) -> object:
    raise exc


async def test_forms() -> None:
    assert await parallel(value(1), value("b")) == (1, "b")
    assert await parallel([value(1), value(2)]) == [1, 2]
    assert await parallel(value(i) for i in range(3)) == [0, 1, 2]
    r = await parallel(user=value("ana"), posts=value([1]))
    assert isinstance(r, Results) and r == {"user": "ana", "posts": [1]}
    assert r.user == "ana" and r["posts"] == [1]
    assert await parallel({"not an identifier": value(1)}) == {"not an identifier": 1}
    assert await parallel() == ()
    assert await parallel([]) == []
    assert await parallel(value(5)) == (5,)
    no_tasks_left()


async def test_results_mapping() -> None:
    r = await parallel(items=value(1), a=value(2))
    assert r["items"] == 1 and r.a == 2
    with pytest.raises(AttributeError, match="no result named 'b'"):
        _ = r.b
    assert repr(r) == "Results({'items': 1, 'a': 2})"


async def test_results_in_argument_order_not_completion_order() -> None:
    gates = [asyncio.Event() for _ in range(3)]
    call = asyncio.ensure_future(
        parallel(after(gates[0], "a"), after(gates[1], "b"), after(gates[2], "c"))
    )
    for gate in reversed(gates):
        gate.set()
        await asyncio.sleep(0)
    assert await call == ("a", "b", "c")
    no_tasks_left()


async def test_first_failure_cancels_the_rest_and_is_raised() -> None:
    cancelled: list[str] = []
    never = asyncio.Event()

    async def blocked(name: str) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    with pytest.raises(ValueError, match="boom") as info:
        await parallel(blocked("a"), fail(ValueError("boom")), blocked("c"))
    assert sorted(cancelled) == ["a", "c"]
    assert not getattr(info.value, "__notes__", None)
    no_tasks_left()


async def test_failures_in_the_same_turn_raise_the_earliest_argument_with_notes() -> None:
    with pytest.raises(KeyError) as info:
        await parallel(value(0), fail(KeyError("first")), fail(ValueError("second")))
    (note,) = info.value.__notes__
    assert "1 other branch(es) failed too" in note and "branch 2: ValueError('second')" in note


async def test_cleanup_errors_do_not_hide_the_real_failure() -> None:
    never = asyncio.Event()

    async def bad_cleanup() -> None:
        try:
            await never.wait()
        finally:
            raise OSError("cleanup failed")

    with pytest.raises(ValueError) as info:
        await parallel(bad_cleanup(), fail(ValueError("real")))
    assert "branch 0: OSError('cleanup failed')" in info.value.__notes__[0]


async def test_return_exceptions_collects() -> None:
    gate = asyncio.Event()
    gate.set()
    results = await parallel(
        value(1), fail(ValueError("x")), after(gate, 3), return_exceptions=True
    )
    assert results[0] == 1 and isinstance(results[1], ValueError) and results[2] == 3
    named = await parallel(a=fail(KeyError("k")), b=value(2), return_exceptions=True)
    assert isinstance(named.a, KeyError) and named.b == 2
    no_tasks_left()


async def test_return_exceptions_gives_cancelled_error_for_a_cancelled_task() -> None:
    never = asyncio.Event()
    task = asyncio.ensure_future(after(never, 1))
    asyncio.get_running_loop().call_soon(task.cancel)
    results = await parallel([task, value(2)], return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) and results[1] == 2


async def test_limit_bounds_concurrency_and_keeps_order() -> None:
    running = peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        return i

    assert await parallel((work(i) for i in range(10)), limit=3) == list(range(10))
    assert peak == 3
    no_tasks_left()


async def test_limit_stops_starting_after_a_failure() -> None:
    started: list[int] = []

    async def work(i: int) -> int:
        started.append(i)
        await asyncio.sleep(0)
        if i == 1:
            raise ValueError(i)
        return i

    with pytest.raises(ValueError):
        await parallel((work(i) for i in range(10)), limit=2)
    assert started == [0, 1, 2]  # 2 started when 0 finished; nothing after 1 failed
    no_tasks_left()  # and the 7 unstarted coroutines were closed (no "never awaited")


@pytest.mark.parametrize("limit", [0, -1, 1.5, "2"])
async def test_bad_limit(limit: object) -> None:
    with pytest.raises(ValueError, match="limit"):
        await parallel(value(1), value(2), limit=limit)  # type: ignore[call-overload]


async def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="not both"):
        await parallel(value(1), b=value(2))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="did you pass a function"):
        await parallel(value(1), value)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not awaitable"):
        await parallel([value(1), 2], limit=1)  # type: ignore[list-item]
    no_tasks_left()


async def test_tasks_and_futures_are_arguments() -> None:
    task = asyncio.ensure_future(value("task"))
    future = spawn(value("future"))
    done = spawn(value("done"))
    await done
    assert await parallel(task, future, done, value("coro")) == ("task", "future", "done", "coro")


async def test_failure_cancels_task_arguments_too() -> None:
    never = asyncio.Event()
    task = asyncio.ensure_future(after(never, 1))
    with pytest.raises(ValueError):
        await parallel(task, fail(ValueError()))
    assert task.cancelled()


async def test_fatal_base_exception_propagates() -> None:
    class Unwind(BaseException):
        pass

    never = asyncio.Event()
    with pytest.raises(Unwind):
        await parallel(after(never, 1), fail(Unwind()), return_exceptions=True)
    with pytest.raises(Unwind):
        await parallel(after(never, 1), fail(Unwind()))
    no_tasks_left()


async def test_awaitable_objects_are_wrapped() -> None:
    class Awaitable:
        def __await__(self):  # type: ignore[no-untyped-def]
            return value("custom").__await__()

    assert await parallel(Awaitable(), value(1)) == ("custom", 1)  # type: ignore[arg-type]
