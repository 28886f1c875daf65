"""Ten thousand sleeping workflows hold no task and almost no memory."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import tracemalloc

import legato
from polling import eventually

MB = 1024 * 1024
# Bytes of resident memory per suspended workflow, at most. Measured: 400 to 1,300, nearly
# all outside Python: SQLite's page caches filling up to their cap (2 MB per connection)
# and its WAL index as the file grows. A workflow held in memory (task, run, history)
# costs several KB.
BOUND_PER_WORKFLOW = 2048
# Bytes of Python objects per suspended workflow, at most (tracemalloc, a batch of 2,000
# scaled to 10,000). Measured: 65 to 85, none of it kept per workflow: dicts sized for the
# peak of running ones and news not read yet. A workflow held in memory costs several KB.
PYTHON_BOUND_PER_WORKFLOW = 200


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@legato.workflow(name="nap")
async def nap(i: int) -> int:
    await legato.sleep("1h")
    return i


def waiting(sqlite_db: str) -> int:
    with sqlite3.connect(sqlite_db) as conn:
        return conn.execute("SELECT count(*) FROM workflows WHERE status = 'waiting'").fetchone()[0]


async def start_sleepers(rt: legato.Runtime, sqlite_db: str, first: int, n: int) -> None:
    await asyncio.gather(*(rt.start(nap, i, id=f"nap-{i}") for i in range(first, first + n)))
    await eventually(lambda: waiting(sqlite_db) >= first + n, timeout=60)
    # a suspension is visible in the store a loop turn before its task has ended
    await eventually(lambda: rt._worker is not None and not rt._worker.tasks)
    gc.collect()


async def test_ten_thousand_sleeping_workflows_are_unloaded(sqlite_db):
    """The first 10,000 warm up Python's allocator (RSS never shrinks); the next
    10,000 sleepers may add at most BOUND_PER_WORKFLOW each: the store holds them."""
    n = 10_000
    async with legato.Runtime(sqlite_db) as rt:
        await start_sleepers(rt, sqlite_db, 0, n)
        before = rss()
        await start_sleepers(rt, sqlite_db, n, n)
        grown = rss() - before
        tracemalloc.start()  # a third batch: what stays of Python's objects
        try:
            objects = tracemalloc.get_traced_memory()[0]
            await start_sleepers(rt, sqlite_db, 2 * n, n // 5)
            objects_grown = (tracemalloc.get_traced_memory()[0] - objects) * 5
        finally:
            tracemalloc.stop()
        assert rt._worker is not None
        assert not rt._worker.tasks and not rt._worker.runs  # no task, no run held
    assert grown < n * BOUND_PER_WORKFLOW, f"RSS grew {grown / MB:.1f} MB for {n} workflows"
    assert objects_grown < n * PYTHON_BOUND_PER_WORKFLOW, (
        f"Python objects grew {objects_grown / MB:.1f} MB for {n} workflows")
