"""Across primitives: outer cancellation reaches every branch, no leaks, tracebacks kept."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from flow_helpers import no_tasks_left

from legato.flow import AllFailed, parallel, race, select, spawn, timeout, vote

Make = Callable[[list[Awaitable[Any]]], Awaitable[Any]]

PRIMITIVES: dict[str, tuple[Make, int]] = {  # how to call it, and how many branches start
    "parallel": (lambda aws: parallel(*aws), 3),
    "parallel(limit=2)": (lambda aws: parallel(aws, limit=2), 2),
    "parallel(return_exceptions)": (lambda aws: parallel(*aws, return_exceptions=True), 3),
    "race": (lambda aws: race(*aws), 3),
    "vote": (lambda aws: vote(*aws), 3),
    "vote(quorum=2)": (lambda aws: vote(*aws, quorum=2), 3),
    "select": (lambda aws: select(a=aws[0], b=aws[1], c=aws[2], timeout=60), 3),
    "timeout": (lambda aws: timeout(60, parallel(*aws)), 3),
    "spawn(list)": (lambda aws: spawn(aws), 3),
}


@pytest.mark.parametrize("name", list(PRIMITIVES))
async def test_cancelling_the_caller_cancels_every_branch(name: str) -> None:
    make, expected = PRIMITIVES[name]
    started: list[int] = []
    cancelled: list[int] = []
    all_started = asyncio.Event()
    never = asyncio.Event()

    async def branch(i: int) -> int:
        started.append(i)
        if len(started) == expected:
            all_started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleanup that takes a turn
            cancelled.append(i)
            raise
        return i

    async def caller() -> Any:
        return await make([branch(0), branch(1), branch(2)])

    task = asyncio.ensure_future(caller())
    await all_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == sorted(started) and len(started) == expected
    no_tasks_left()


async def test_a_second_cancel_during_cleanup_still_waits_for_the_losers() -> None:
    cleanup = asyncio.Event()
    cleaned: list[str] = []
    never = asyncio.Event()

    async def slow_loser() -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            await cleanup.wait()  # a long cleanup
            cleaned.append("loser")
            raise
        return "loser"

    async def winner() -> str:
        await asyncio.sleep(0)
        return "winner"

    task = asyncio.ensure_future(race(slow_loser(), winner()))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # race has a winner and waits for the loser's cleanup
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # still waiting: no branch is left behind
    cleanup.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["loser"]
    no_tasks_left()


def frames(error: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(error.__traceback__)]


async def deep_failure() -> None:
    await asyncio.sleep(0)
    raise ValueError("deep")


async def calls_deep() -> None:
    await deep_failure()


async def test_exceptions_keep_their_tracebacks() -> None:
    never = asyncio.Event()
    with pytest.raises(ValueError) as info:
        await parallel(calls_deep(), never.wait())
    assert frames(info.value)[-2:] == ["calls_deep", "deep_failure"]
    with pytest.raises(AllFailed) as group:
        await race(calls_deep(), calls_deep())
    for error in group.value.exceptions:
        assert frames(error)[-2:] == ["calls_deep", "deep_failure"]
    with pytest.raises(ValueError) as info:
        await select(a=calls_deep(), b=never.wait())
    assert frames(info.value)[-2:] == ["calls_deep", "deep_failure"]
    with pytest.raises(ValueError) as info:
        await timeout(1, calls_deep())
    assert frames(info.value)[-2:] == ["calls_deep", "deep_failure"]
    with pytest.raises(ValueError) as info:
        await spawn(calls_deep())
    assert frames(info.value)[-2:] == ["calls_deep", "deep_failure"]
    with pytest.raises(AllFailed) as group:
        await vote(calls_deep())
    assert frames(group.value.exceptions[0])[-2:] == ["calls_deep", "deep_failure"]
    no_tasks_left()


async def test_many_branches_leave_nothing_behind() -> None:
    never = asyncio.Event()

    async def one(i: int) -> int:
        return i

    assert await parallel(one(i) for i in range(500)) == list(range(500))
    assert await race([never.wait() for _ in range(499)] + [one(7)]) == 7
    assert await vote(one(i % 3) for i in range(500)) == 0
    no_tasks_left()
