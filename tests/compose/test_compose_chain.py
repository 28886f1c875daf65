"""Runnable, runnable(), Chain and Memory outside workflows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import legato


async def inc(x: int) -> int:
    return x + 1


async def double(x: int) -> int:
    return x * 2


def minus_three(x: int) -> int:  # a plain def: runs in a thread
    return x - 3


# -- Runnable / runnable ------------------------------------------------------------


async def test_runnable_adapts_functions_and_pipes_compose_into_a_flat_chain():
    chain = legato.runnable(inc) | double | minus_three
    assert isinstance(chain, legato.Chain)
    assert [r.name for r in chain.steps] == ["inc", "double", "minus_three"]
    assert await chain.invoke(1) == 1
    assert await (inc | legato.runnable(double)).invoke(1) == 4  # __ror__


async def test_runnable_subclass_gets_batch_stream_and_pipe():
    class Shout(legato.Runnable[str, str]):
        name = "shout"

        async def invoke(self, input: str) -> str:
            return input.upper()

    assert await Shout().batch(["a", "b"]) == ["A", "B"]
    assert [c async for c in Shout().stream("x")] == ["X"]
    assert await (Shout() | len).invoke("abc") == 3


async def test_runnable_wraps_a_step_and_keeps_its_retry():
    attempts = []

    @legato.step(retry=legato.Retry(attempts=3, initial=0, jitter=0))
    async def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise ConnectionError("again")
        return x

    r = legato.runnable(flaky)
    assert r.name == "flaky"
    assert await r.invoke(7) == 7 and attempts == [7, 7, 7]
    assert legato.runnable(r) is r
    with pytest.raises(TypeError, match="not 42"):
        legato.Chain([42])


async def test_batch_keeps_input_order_and_bounds_concurrency():
    running = {"now": 0, "peak": 0}

    async def slow_square(x: int) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.001 * (6 - x))  # later inputs finish first
        running["now"] -= 1
        return x * x

    r = legato.runnable(slow_square)
    assert await r.batch(range(6), concurrency=2) == [0, 1, 4, 9, 16, 25]
    assert running["peak"] == 2
    with pytest.raises(ValueError, match="concurrency"):
        await r.batch([1], concurrency=0)


async def test_an_async_generator_streams_and_invoke_collects_its_chunks():
    @legato.runnable
    async def words(text: str) -> AsyncIterator[str]:
        for word in text.split():
            yield word

    assert [c async for c in words.stream("a b c")] == ["a", "b", "c"]
    assert await words.invoke("a b") == ["a", "b"]
    chain = legato.Chain([str.strip, words])
    assert [c async for c in chain.stream("  x y ")] == ["x", "y"]


# -- Chain --------------------------------------------------------------------------


async def test_chain_timeout_cancels_the_running_step_and_stops_the_chain():
    entered, cancelled = asyncio.Event(), asyncio.Event()
    after = []

    async def hang(x: int) -> int:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    async def never(x: int) -> int:
        after.append(x)
        return x

    chain = legato.Chain([inc, hang, never], timeout=0.05, name="slowpoke")
    with pytest.raises(TimeoutError, match=r"chain 'slowpoke' did not finish within .* 0.05 s "
                                           r"while step 'hang' was running"):
        await chain.invoke(1)
    assert entered.is_set() and cancelled.is_set() and after == []


async def test_a_steps_own_timeout_error_is_not_the_chains():
    async def own(x: int) -> int:
        raise TimeoutError("the API timed out")

    with pytest.raises(TimeoutError, match="the API timed out"):
        await legato.Chain([own], timeout=10).invoke(1)


async def test_retries_rerun_a_failing_step_only():
    calls = {"inc": 0, "flaky": 0}

    async def counted_inc(x: int) -> int:
        calls["inc"] += 1
        return x + 1

    async def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError("try again")
        return x * 10

    assert await legato.Chain([counted_inc, flaky], retries=3, retry_delay=0).invoke(1) == 20
    assert calls == {"inc": 1, "flaky": 3}

    calls.update(inc=0, flaky=-10)
    chain = legato.Chain([counted_inc, flaky], retries=legato.Retry(attempts=2, initial=0))
    with pytest.raises(ConnectionError) as caught:
        await chain.invoke(1)
    assert len(caught.value.__notes__) == 2  # one note per attempt
    with pytest.raises(ValueError, match="retries"):
        legato.Chain([inc], retries=-1)


async def test_on_error_replaces_the_output_or_raises():
    async def broken(x: int) -> int:
        raise ValueError(f"bad {x}")

    seen = []

    async def fallback(error: Exception, step: str, value: Any) -> int:
        seen.append((str(error), step, value))
        return -1

    assert await legato.Chain([inc, broken, inc], on_error=fallback).invoke(1) == 0
    assert seen == [("bad 2", "broken", 2)]

    def translate(error: Exception, step: str, value: Any) -> Any:
        raise RuntimeError(f"{step} failed") from error

    with pytest.raises(RuntimeError, match="broken failed"):
        await legato.Chain([broken], on_error=translate).invoke(1)


async def test_chain_memory_is_shared_across_invocations():
    memory = legato.Memory(max_messages=3)

    async def answer(question: str, memory: legato.Memory) -> str:
        reply = f"{question}#{len(memory.recent())}"
        memory.append({"q": question, "a": reply})
        memory.put("turns", memory.get("turns", 0) + 1)
        return reply

    async def no_memory(reply: str) -> str:
        return reply.upper()

    chat = legato.Chain([answer, no_memory], memory=memory)
    assert await chat.invoke("hi") == "HI#0"
    assert await chat.invoke("more") == "MORE#1"  # saw the first turn
    for q in ("c", "d"):
        await chat.invoke(q)
    assert [m["q"] for m in memory.recent()] == ["more", "c", "d"]  # max_messages=3
    assert memory.recent(1) == [{"q": "d", "a": "d#3"}]
    assert memory.get("turns") == 4 and len(memory) == 3


async def test_a_failed_step_leaves_memory_untouched():
    memory = legato.Memory()
    attempts = []

    async def writes_then_fails(x: int, memory: legato.Memory) -> int:
        memory.append(f"attempt {len(attempts)}")
        attempts.append(x)
        if len(attempts) < 2:
            raise ConnectionError("flaky")
        return x

    await legato.Chain([writes_then_fails], memory=memory, retries=1).invoke(5)
    assert memory.messages == ["attempt 1"]  # the failed attempt's write is gone


async def test_a_runnable_subclass_asking_for_memory_gets_it_and_names_are_stable():
    import functools

    class Counter(legato.Runnable[int, int]):
        name = "counter"

        async def invoke(self, input: int, memory: legato.Memory | None = None) -> int:
            assert memory is not None
            memory.put("seen", memory.get("seen", 0) + input)
            return int(memory.get("seen"))

    memory = legato.Memory()
    chain = legato.Chain([Counter()], memory=memory)
    assert [await chain.invoke(2), await chain.invoke(3)] == [2, 5]

    def add(x: int, y: int) -> int:
        return x + y

    class Callable:
        async def __call__(self, x: int) -> int:
            return x

    # Names are recorded inside workflows: never a repr with an address in it.
    assert legato.runnable(functools.partial(add, 1)).name == "add"
    assert legato.runnable(Callable()).name == "Callable"
    assert await legato.Chain([functools.partial(add, 1), Callable()]).invoke(1) == 2
