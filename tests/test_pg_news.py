"""PostgreSQL news: workers and waiters wake on NOTIFY, not on a poll tick.

Two Runtimes in one process, each with its own pool and listening
connection, stand for two processes: a client (``worker=False``) and a worker.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

import legato
from polling import eventually

_started: dict[str, float] = {}


@legato.workflow(name="pg_news_noop")
async def noop(key: str) -> str:
    _started[key] = time.perf_counter()
    return key


@legato.workflow(name="pg_news_waiter")
async def waiter() -> float:
    await legato.wait_for_signal("go")
    return time.perf_counter()


async def test_enqueue_to_start_latency_is_not_a_poll_interval(pg_url):
    async with legato.Runtime(pg_url, worker=False) as client, legato.Runtime(pg_url):
        await client.run(noop, "warm-up")  # connections open, statements prepared
        latencies = []
        for i in range(20):
            began = time.perf_counter()
            handle = await client.start(noop, f"k{i}")
            assert await handle.result(timeout=5) == f"k{i}"
            latencies.append(_started[f"k{i}"] - began)
    median = statistics.median(latencies)
    print(f"enqueue-to-start p50 {median * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert median < 0.2, latencies


@pytest.mark.parametrize("suspend_after", [5.0, 0.05], ids=["in-memory", "unloaded"])
async def test_a_signal_from_a_client_wakes_the_workflow_at_once(pg_url, suspend_after):
    async with (legato.Runtime(pg_url, worker=False) as client,
                legato.Runtime(pg_url, suspend_after=suspend_after)):
        handle = await client.start(waiter, id="w1")

        await asyncio.sleep(0.3)  # well past suspend_after=0.05: unloaded to the store
        if suspend_after < 1:
            assert await handle.status() == "waiting"
        sent = time.perf_counter()
        await client.signal("w1", "go", True)
        woke = await handle.result(timeout=5)
        done = time.perf_counter()
    print(f"signal-to-wake {(woke - sent) * 1000:.1f} ms, to result {(done - sent) * 1000:.1f} ms")
    assert woke - sent < 0.2
    assert done - sent < 0.3


async def test_stopping_as_news_arrives_stops(pg_url):
    # A Runtime's exit cancels its news listener; news arriving in the same
    # loop turns must not swallow that cancel (asyncio.wait_for on 3.11 did,
    # and the exit hung forever). Arrival is simulated at each nearby moment.
    from legato.store import open_store

    store = open_store(pg_url)
    await store.open()
    try:
        for turns in range(6):
            listening = asyncio.create_task(store.wait_for_news(5))  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)  # connected and waiting
            store._news._arrived.set()  # type: ignore[attr-defined]  # news arrives...
            for _ in range(turns):
                await asyncio.sleep(0)
            if listening.cancel():  # ...as the Runtime stops: unless already done, it stops
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(listening, 2)
            else:
                await listening
    finally:
        await store.close()


async def test_a_process_hears_finishes_only_while_something_waits_for_one(pg_url):
    # A finish is sent to every process that LISTENs for it; workers that await no
    # result must not be woken by each one (each cost every worker a wake-up).
    from legato.durable.worker import WakeBus
    from legato.store import NewWorkflow, open_store

    here, there = open_store(pg_url), open_store(pg_url)
    await here.open()
    await there.open()
    bus = WakeBus(linger=0.05)
    bus.follow = here.follow_ends

    async def finish_there(wid: str) -> None:
        await there.create(NewWorkflow(wid, "wf", b"", "B#1", time.time() + 60))
        assert await there.finish(wid, "B#1", "succeeded", b"r", None)

    async def finishes_heard() -> list[str]:
        return [w for kind, w in await here.wait_for_news(0.2)  # type: ignore[attr-defined]
                if kind == "finish"]

    try:
        await finish_there("before")
        assert await finishes_heard() == []  # nothing waits here: not sent here
        async with bus.hearing_ends() as started:
            assert started  # just began: the caller reads again what it waits for
            async with bus.hearing_ends() as again:
                assert not again
            await finish_there("meanwhile")
            assert await finishes_heard() == ["meanwhile"]
        assert bus.following  # for a while after the last wait (linger)
        await eventually(lambda: not bus.following)
        await finish_there("after")
        assert await finishes_heard() == []
    finally:
        bus.close()
        await here.close()
        await there.close()


async def test_a_schema_with_a_long_name_still_sends_and_hears_news(pg_url):
    # PostgreSQL refuses a NOTIFY channel over 63 bytes, and the channels were named
    # "legato.<schema>": every write with news failed on a schema of 57 characters
    # or more (its finishes and events, on "legato.<schema>.ends", from 52)
    from legato.store import open_store

    base = pg_url.rsplit("schema=", 1)[0]
    url = f"{base}schema={'s' * 63}"
    try:
        async with legato.Runtime(url, worker=False) as client, legato.Runtime(url):
            handle = await client.start(noop, "long", id="long-schema")
            assert await handle.result(timeout=5) == "long"  # its finish heard
    finally:
        store = open_store(url)
        await store.open()
        await store._read("drop", f'DROP SCHEMA "{"s" * 63}" CASCADE')  # type: ignore[attr-defined]
        await store.close()
