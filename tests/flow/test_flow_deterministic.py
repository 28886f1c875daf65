"""Deterministic scheduling: deferred FIFO futures, combinators in argument order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
from flow_helpers import no_tasks_left

from legato.flow import (
    Cancelled,
    Pending,
    Selected,
    deterministic,
    parallel,
    race,
    select,
    spawn,
    timeout,
    vote,
)
from legato.flow._deterministic import enabled


class Recorder:
    """Stub tasks that log when they run and track how many run at once."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.log: list[str] = []
        self.running = 0
        self.peak = 0
        self.rng = rng

    async def task(self, name: str, result: Any = None, fail: bool = False) -> Any:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.rng is not None:
                await asyncio.sleep(self.rng.random() / 2000)
            else:
                await asyncio.sleep(0)
            self.log.append(name)
            if fail:
                raise ValueError(name)
            return name if result is None else result
        finally:
            self.running -= 1


async def test_the_flag() -> None:
    assert not enabled()
    with deterministic():
        assert enabled()
        async with deterministic():
            assert enabled()
        assert enabled()
    assert not enabled()
    block = deterministic()
    with block:
        pass
    with pytest.raises(RuntimeError, match="twice"), block:
        pass


async def test_spawned_futures_wait_and_run_one_at_a_time_in_fifo_order() -> None:
    r = Recorder()
    async with deterministic():
        a, b, c = spawn(r.task("a")), spawn(r.task("b")), spawn(r.task("c"))
        await asyncio.sleep(0.001)
        assert r.log == [] and a.state == Pending()  # queued, not started
        assert await c == "c"  # runs a, then b, then c
        assert r.log == ["a", "b", "c"] and r.peak == 1
        assert (await a, await b) == ("a", "b")
    no_tasks_left()


async def test_combinators_run_branches_in_argument_order() -> None:
    r = Recorder(random.Random(1))
    async with deterministic():
        assert await parallel(r.task("p1"), r.task("p2"), r.task("p3")) == ("p1", "p2", "p3")
        assert r.log == ["p1", "p2", "p3"] and r.peak == 1
        r.log.clear()
        # race: the first success in argument order, even when slower; later ones never start
        assert await race(r.task("r1", fail=True), r.task("r2"), r.task("r3")) == "r2"
        assert r.log == ["r1", "r2"]
        r.log.clear()
        # vote: counted in argument order, the quorum stops it
        assert await vote(r.task("v1", "x"), r.task("v2", "x"), r.task("v3", "y"), quorum=2) == "x"
        assert r.log == ["v1", "v2"]
        r.log.clear()
        # select: the first arm
        assert await select(a=r.task("sa"), b=r.task("sb")) == Selected("a", "sa")
        assert r.log == ["sa"]
    no_tasks_left()


async def scenario(rng: random.Random) -> tuple[Any, ...]:
    r = Recorder(rng)
    f1 = spawn(r.task("s1", 1))
    f2 = spawn(r.task("s2", 2))
    p = await parallel(r.task("p1", 1), r.task("p2", 2), r.task("p3", 3))
    fast = await race(r.task("r1", "slow"), r.task("r2", "fast"))
    v = await vote(r.task("v1", "x"), r.task("v2", "y"), r.task("v3", "y"), r.task("v4", "x"))
    s = await select(a=r.task("sa", 1), b=r.task("sb", 2))
    nested = spawn([r.task("n1"), r.task("n2")])
    return (await f2, await f1, p, fast, v, s, tuple(await nested), tuple(r.log))


async def test_fifty_runs_with_random_sleeps_give_one_result() -> None:
    results = set()
    for seed in range(50):
        async with deterministic():
            results.add(await scenario(random.Random(seed)))
    assert len(results) == 1
    (only,) = results
    assert only[:7] == (2, 1, (1, 2, 3), "slow", "x", Selected("a", 1), ("n1", "n2"))
    assert only[7] == ("p1", "p2", "p3", "r1", "v1", "v2", "v3", "v4", "sa", "s1", "s2", "n1", "n2")
    no_tasks_left()


async def test_without_deterministic_the_same_scenario_varies() -> None:
    orders = {(await scenario(random.Random(seed)))[7] for seed in range(20)}
    assert len(orders) > 1  # so the test above means something


async def test_plain_with_runs_leftovers_in_the_background_in_fifo_order() -> None:
    r = Recorder()
    with deterministic():
        a, b = spawn(r.task("a")), spawn(r.task("b"))
    assert r.log == []
    assert await b == "b"
    assert r.log == ["a", "b"] and await a == "a"


async def test_async_with_runs_leftovers_before_leaving() -> None:
    r = Recorder()
    async with deterministic():
        spawn(r.task("a"))
        spawn(r.task("b"))
    assert r.log == ["a", "b"] and r.peak == 1
    no_tasks_left()


async def test_an_error_leaving_the_block_cancels_leftovers_unstarted() -> None:
    r = Recorder()
    with pytest.raises(KeyError):
        async with deterministic():
            f = spawn(r.task("a"))
            raise KeyError("leave")
    assert f.state == Cancelled() and r.log == []
    with pytest.raises(KeyError), deterministic():
        g = spawn(r.task("b"))
        raise KeyError("leave")
    with contextlib.suppress(asyncio.CancelledError):
        await g
    assert g.state == Cancelled() and r.log == []
    no_tasks_left()


async def test_a_cancelled_queued_future_never_starts() -> None:
    r = Recorder()
    async with deterministic():
        a, b, c = spawn(r.task("a")), spawn(r.task("b")), spawn(r.task("c"))
        b.cancel()
        assert await c == "c"
        assert r.log == ["a", "c"]
        with contextlib.suppress(asyncio.CancelledError):
            await b
        assert b.state == Cancelled()
        await a


async def test_futures_spawned_by_futures_join_the_queue() -> None:
    r = Recorder()

    async def parent() -> list[Any]:
        child = spawn(r.task("child"))
        r.log.append("parent")
        return [await child]

    async with deterministic():
        p = spawn(parent())
        other = spawn(r.task("other"))
        assert await p == ["child"]
        assert r.log == ["parent", "other", "child"]  # FIFO: other was queued before child
        await other


async def test_timeouts_stay_real_deadlines() -> None:
    never = asyncio.Event()
    async with deterministic():
        assert await timeout(0.001, never.wait(), default="late") == "late"
        assert await select(a=never.wait(), timeout=0.001) == Selected("timeout", None)
    no_tasks_left()
