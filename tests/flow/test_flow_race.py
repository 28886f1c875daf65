"""race(): first success wins, losers cancelled and awaited, AllFailed when all fail."""

from __future__ import annotations

import asyncio

import pytest
from flow_helpers import no_tasks_left, value

from legato.flow import AllFailed, race, sleep


async def fail(exc: BaseException) -> object:
    raise exc


async def test_first_success_wins_over_an_earlier_failure() -> None:
    gate = asyncio.Event()

    async def later() -> str:
        await gate.wait()
        return "ok"

    call = asyncio.ensure_future(race(fail(ValueError("fast failure")), later()))
    await asyncio.sleep(0.001)
    assert not call.done()  # a failure doesn't end the race
    gate.set()
    assert await call == "ok"
    no_tasks_left()


async def test_losers_are_cancelled_and_awaited() -> None:
    finished: list[str] = []
    never = asyncio.Event()

    async def loser(name: str) -> str:
        try:
            await never.wait()
        finally:
            await asyncio.sleep(0)  # cleanup that takes a turn
            finished.append(name)
        return name

    assert await race(loser("a"), value("winner"), loser("b")) == "winner"
    assert sorted(finished) == ["a", "b"]  # their cleanup ran before race returned
    no_tasks_left()


async def test_all_failed_holds_every_failure_in_argument_order() -> None:
    gate = asyncio.Event()

    async def fails_later() -> None:
        await gate.wait()
        raise KeyError("late")

    async def first() -> None:
        gate.set()
        raise ValueError("early")

    with pytest.raises(AllFailed) as info:
        await race(fails_later(), first())
    assert isinstance(info.value, ExceptionGroup)
    assert [type(e) for e in info.value.exceptions] == [KeyError, ValueError]
    assert "all 2 branches of race() failed" in str(info.value)
    no_tasks_left()


async def test_all_failed_works_with_except_star() -> None:
    caught = []
    try:
        await race(fail(ValueError(1)), fail(ValueError(2)), fail(OSError(3)))
    except* ValueError as group:
        caught.append(len(group.exceptions))
    except* OSError:
        caught.append("os")
    assert caught == [2, "os"]


async def test_simultaneous_successes_go_to_the_earliest_argument() -> None:
    assert await race(value("a"), value("b"), value("c")) == "a"
    assert await race([value("x"), value("y")]) == "x"


async def test_race_with_timeout_reads_naturally() -> None:
    never = asyncio.Event()

    async def fetch() -> str:
        await never.wait()
        return "page"

    assert await race(fetch(), sleep(0.001, result=None)) is None
    no_tasks_left()


async def test_empty_race() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await race()


async def test_fatal_base_exception_propagates_without_waiting() -> None:
    class Unwind(BaseException):
        pass

    never = asyncio.Event()

    async def blocked() -> None:
        await never.wait()

    with pytest.raises(Unwind):
        await race(blocked(), fail(Unwind()))
    no_tasks_left()


async def test_externally_cancelled_branches_are_not_successes() -> None:
    never = asyncio.Event()

    async def blocked() -> int:
        await never.wait()
        return 1

    task = asyncio.ensure_future(blocked())
    asyncio.get_running_loop().call_soon(task.cancel)
    assert await race(task, sleep(0.001, result="timer")) == "timer"
    other = asyncio.ensure_future(blocked())
    asyncio.get_running_loop().call_soon(other.cancel)
    with pytest.raises(AllFailed) as info:
        await race(other, fail(ValueError()))
    assert [type(e) for e in info.value.exceptions] == [ValueError]
