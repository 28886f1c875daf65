"""The hot path of one workflow (issue 19): what a start → result costs, and that the
shortcuts taken for it keep every wake-up that matters.

A workflow created and run in this process reads no history (it has none)
and its result is the row its own finish stored: start → result is three
writes and nothing else. A finish pokes the claim loop only when it can make
something claimable: a slot freed in a full worker, a capped queue, a parent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import legato
from polling import eventually

QUICK = 2.0  # seconds: well under the 5 s safety poll a lost wake-up would wait for


@legato.step
async def double(n: int) -> int:
    return 2 * n


@legato.workflow(name="hot_one_step")
async def one_step(n: int) -> int:
    return await double(n)


@legato.workflow(name="hot_fails")
async def fails() -> None:
    await double(1)
    raise ValueError("no")


gates: dict[str, asyncio.Event] = {}


@legato.workflow(name="hot_gated")
async def gated(key: str) -> str:
    await gates[key].wait()
    return key


@legato.workflow(name="hot_signalled")
async def signalled() -> object:
    return await legato.wait_for_signal("go")


@legato.workflow(name="hot_parent")
async def parent() -> object:
    return await signalled()  # a child workflow (id "<parent>/1"), waited for


@contextmanager
def statements(rt: legato.Runtime) -> Iterator[list[str]]:
    """Every statement the SQLite store's connections run meanwhile."""
    seen: list[str] = []
    conns = [c for c in (getattr(rt.store, "_writer", None), getattr(rt.store, "_reader", None))
             if isinstance(c, sqlite3.Connection)]
    for conn in conns:
        conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split())))
    try:
        yield seen
    finally:
        for conn in conns:
            conn.set_trace_callback(None)


async def test_start_to_result_is_three_commits_and_no_read(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(one_step, 1, id="warm-up")
        await asyncio.sleep(0.05)  # the claim loop settles after the warm-up
        with statements(rt) as seen:
            assert await rt.run(one_step, 21, id="hot") == 42
        workflow_reads = [s for s in seen if s.startswith("SELECT") and "news" not in s]
        assert workflow_reads == []  # no history, no row read back, no claim
        assert sum(s == "COMMIT" for s in seen) == 3  # create, the step, the finish


async def test_a_local_failure_and_its_retry_read_the_right_rows(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="no"):
            await rt.run(fails, id="f")
        info = await rt.handle("f").info()
        assert info.status == "failed"
        with pytest.raises(ValueError, match="no"):  # a finished run: read from the store
            await rt.handle("f").result()


async def test_two_waiters_on_one_local_run_both_get_its_result(db):
    gates["two"] = asyncio.Event()
    async with legato.Runtime(db) as rt:
        handle = await rt.start(gated, "two", id="two")
        waits = [asyncio.ensure_future(handle.result()) for _ in range(2)]
        await asyncio.sleep(0)
        gates["two"].set()
        assert await asyncio.gather(*waits) == ["two", "two"]


async def test_a_full_worker_starts_the_next_workflow_as_soon_as_one_ends(db):
    gates["full"] = asyncio.Event()
    async with legato.Runtime(db, concurrency=1) as rt:
        first = await rt.start(gated, "full", id="first")
        second = await rt.start(one_step, 5, id="second")  # no slot: pending
        gates["full"].set()
        assert await first.result() == "full"
        async with asyncio.timeout(QUICK):  # the finish freed the slot and poked
            assert await second.result() == 10


async def test_a_full_worker_reads_nothing_while_work_arrives(sqlite_db):
    gates["busy"] = asyncio.Event()
    async with legato.Runtime(sqlite_db, concurrency=1) as rt:
        first = await rt.start(gated, "busy", id="busy")
        await asyncio.sleep(0.05)  # the claim loop settles: full
        with statements(rt) as seen:
            pending = [await rt.start(one_step, i, id=f"p{i}") for i in range(20)]
            await asyncio.sleep(0.05)  # each start poked the claim loop
        # no claim, next_wake or next_lease_expiry per poke: nothing could be taken
        assert [s for s in seen if s.startswith("SELECT") and "news" not in s] == []
        gates["busy"].set()
        assert await first.result() == "busy"
        async with asyncio.timeout(QUICK):  # the freed slot is refilled at once
            assert [await h.result() for h in pending] == [2 * i for i in range(20)]


async def test_a_delayed_start_elsewhere_costs_an_idle_worker_one_read(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt, legato.Runtime(sqlite_db, worker=False) as client:
        with statements(rt) as seen:
            def rereads() -> int:
                return sum("min(due_at)" in s for s in seen)

            for i in range(3):  # one start at a time: its news alone wakes the worker
                before = rereads()
                await client.start(one_step, i, id=f"later-{i}", delay=3600)
                await eventually(lambda before=before: rereads() > before)  # type: ignore[misc]
            claims = [s for s in seen if s.startswith("SELECT EXISTS") or "UPDATE" in s]
            # each start re-read the next wake-up and claimed nothing (the worker's
            # first pass, under way when the trace began, may show one claim)
            assert len(claims) <= 1, claims
            soon = await client.start(one_step, 5, id="soon", delay=0.2)
            async with asyncio.timeout(QUICK):  # the wake-up time re-read still wakes it
                assert await rt.handle(soon.id).result() == 10
        assert await rt.handle("later-0").status() == "pending"


async def test_claimed_workflows_that_never_ran_read_no_history(sqlite_db):
    async with legato.Runtime(sqlite_db, worker=False) as client:
        # due in a second: claimed once the statements below are watched
        handles = [await client.start(one_step, i, id=f"c{i}", delay=1.0) for i in range(20)]
    async with legato.Runtime(sqlite_db) as rt:
        with statements(rt) as seen:
            assert [await rt.handle(h.id).result() for h in handles] == [2 * i for i in range(20)]
    assert any("EXISTS" in s for s in seen)  # the claim read it
    assert [s for s in seen if "FROM steps WHERE workflow_id" in s and "EXISTS" not in s] == []


async def test_a_parent_waiting_in_the_store_wakes_when_its_child_ends(db):
    async with legato.Runtime(db, suspend_after=0.01) as rt:
        handle = await rt.start(parent, id="parent")
        async def both_waiting() -> bool:  # unloaded: only the store holds them
            rows = [await rt.store.get(i) for i in ("parent", "parent/1")]
            return all(r is not None and r.status == "waiting" for r in rows)

        await eventually(both_waiting)
        await rt.signal("parent/1", "go", "child")
        async with asyncio.timeout(QUICK):  # the child's finish woke it, and poked
            assert await handle.result() == "child"


async def test_a_capped_queue_starts_the_next_workflow_as_soon_as_one_ends(db):
    gates["capped"] = asyncio.Event()
    single = legato.Queue("hot-single", concurrency=1)
    async with legato.Runtime(db) as rt:
        first = await rt.start(gated, "capped", id="q1", queue=single)
        second = await rt.start(one_step, 4, id="q2", queue=single)
        gates["capped"].set()
        async with asyncio.timeout(QUICK):
            assert await first.result() == "capped"
            assert await second.result() == 8
