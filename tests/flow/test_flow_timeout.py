"""timeout() and sleep(): defaults instead of errors, durations, the block form."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, cast

import pytest
from flow_helpers import no_tasks_left, value

from legato.flow import sleep, spawn, timeout
from legato.flow._hooks import RECORDER, Recorder


async def test_value_in_time() -> None:
    assert await timeout(1, value("v")) == "v"
    assert await timeout("1s", value("v"), default="d") == "v"


async def test_default_when_time_runs_out_and_the_work_is_cancelled() -> None:
    never = asyncio.Event()
    state: list[str] = []

    async def slow() -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleanup that takes a turn
            state.append("cancelled")
            raise
        return "late"

    assert await timeout(0.001, slow()) is None
    assert state == ["cancelled"]  # cancelled and awaited before timeout returned
    assert await timeout(timedelta(milliseconds=1), slow(), default="fallback") == "fallback"
    assert await timeout("1ms", slow(), "positional default") == "positional default"
    no_tasks_left()


async def test_a_task_argument_is_cancelled_too() -> None:
    never = asyncio.Event()
    task = asyncio.ensure_future(never.wait())
    assert await timeout(0.001, task) is None
    assert task.cancelled()
    future = spawn(never.wait())
    assert await timeout(0.001, future, default=0) == 0
    assert future.done()


async def test_errors_of_the_work_propagate() -> None:
    async def fails() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        await timeout(1, fails())

    async def own_timeout() -> None:
        raise TimeoutError("the work's own")

    with pytest.raises(TimeoutError, match="the work's own"):
        await timeout(1, own_timeout())


async def test_bad_durations_name_the_string() -> None:
    never = asyncio.Event()
    with pytest.raises(ValueError, match="'5 minutes' is not a duration"):
        await timeout("5 minutes", never.wait())  # the coroutine is closed, not leaked
    with pytest.raises(ValueError, match="zero or more"):
        await timeout(-1, never.wait())
    with pytest.raises(TypeError):
        await timeout([1], never.wait())  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="'soon' is not a duration"):
        await sleep("soon")


async def test_block_form_moves_on() -> None:
    never = asyncio.Event()
    after: list[str] = []
    async with timeout(0.001) as scope:
        await never.wait()
        after.append("not reached")
    assert scope.expired and after == []
    async with timeout("1h") as scope:
        await asyncio.sleep(0)
    assert not scope.expired
    with pytest.raises(LookupError):
        async with timeout(1):
            raise LookupError("propagates")
    with pytest.raises(TimeoutError, match="own"):
        async with timeout(1):
            raise TimeoutError("own")


async def test_block_form_is_single_use_and_plain_asyncio_only() -> None:
    scope = timeout(1)
    async with scope:
        pass
    with pytest.raises(RuntimeError, match="twice"):
        async with scope:
            pass
    token = RECORDER.set(cast(Recorder, object()))
    try:
        with pytest.raises(RuntimeError, match="inside a workflow"):
            async with timeout(1):
                pass
    finally:
        RECORDER.reset(token)


async def test_sleep_returns_its_result() -> None:
    assert await sleep(0) is None
    assert await sleep("1ms", result="woke") == "woke"
    assert await sleep(timedelta(0), result=3) == 3
    start = time.monotonic()
    await sleep(0.01)
    assert time.monotonic() - start >= 0.009


async def test_outer_cancellation_cancels_the_work() -> None:
    never = asyncio.Event()
    state: list[str] = []

    async def slow() -> None:
        try:
            await never.wait()
        finally:
            state.append("closed")

    call: asyncio.Future[Any] = asyncio.ensure_future(timeout(10, slow()))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert state == ["closed"]
    no_tasks_left()
