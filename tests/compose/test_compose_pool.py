"""Pool: bounded workers, back-pressure, close and stop."""

from __future__ import annotations

import asyncio

import pytest

import legato


async def test_pool_runs_at_most_size_jobs_and_map_keeps_order():
    running = {"now": 0, "peak": 0}

    async def job(i: int) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.001 * (i % 3))
        running["now"] -= 1
        return i * 2

    async with legato.Pool(3) as pool:
        assert await pool.map(job, range(10)) == [i * 2 for i in range(10)]
    assert running["peak"] == 3


async def test_submit_waits_while_the_queue_is_full():
    gate = asyncio.Event()

    async def blocked(i: int) -> int:
        await gate.wait()
        return i

    async with legato.Pool(2, maxsize=1) as pool:
        futures = [await pool.submit(blocked, i) for i in range(3)]  # 2 running, 1 waiting
        assert (pool.running, pool.waiting) == (2, 1)
        fourth = asyncio.create_task(pool.submit(blocked, 3))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not fourth.done()  # back-pressure: no room in the queue
        gate.set()
        futures.append(await fourth)
    assert [f.result() for f in futures] == [0, 1, 2, 3]


async def test_close_waits_for_every_job_and_refuses_new_ones():
    done = []

    async def job(i: int) -> None:
        await asyncio.sleep(0.001)
        done.append(i)

    pool = legato.Pool(2, maxsize=0)
    for i in range(5):
        await pool.submit(job, i)
    await pool.close()
    assert sorted(done) == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="closed"):
        await pool.submit(job, 9)


async def test_stop_cancels_running_and_waiting_jobs():
    cancelled = []
    started = asyncio.Event()

    async def forever(i: int) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    pool = legato.Pool(1)
    running = await pool.submit(forever, 0)
    waiting = await pool.submit(forever, 1)
    await started.wait()
    await pool.stop()
    assert running.cancelled() and waiting.cancelled()
    assert cancelled == [0]  # the waiting one never started


async def test_an_error_leaving_the_block_stops_the_pool():
    async def forever() -> None:
        await asyncio.Event().wait()

    with pytest.raises(KeyError):
        async with legato.Pool(2) as pool:
            future = await pool.submit(forever)
            raise KeyError("boom")
    assert future.cancelled()


async def test_job_errors_go_to_their_future_and_the_pool_goes_on():
    async def fail(i: int) -> int:
        raise ValueError(i)

    def sync_job(i: int) -> int:  # a plain def runs in a thread
        return i + 1

    async with legato.Pool(2) as pool:
        bad = await pool.submit(fail, 1)
        good = await pool.submit(sync_job, 1)
        with pytest.raises(ValueError):
            await bad
        assert await good == 2
        with pytest.raises(ValueError):
            await pool.map(fail, [1, 2])


async def test_cancelling_a_future_cancels_its_job():
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async with legato.Pool(1) as pool:
        future = await pool.submit(forever)
        await started.wait()
        future.cancel()
        await asyncio.wait_for(cancelled.wait(), 1)
        assert future.cancelled()


def test_pool_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one worker"):
        legato.Pool(0)
    with pytest.raises(ValueError, match="maxsize"):
        legato.Pool(1, maxsize=-1)
