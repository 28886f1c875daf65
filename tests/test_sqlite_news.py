"""Processes sharing one SQLite file tell each other about new work, signals and ends.

Workers poll only every 5 s as a safety net, so each figure below would take
seconds without the news table.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import legato
import news_workflows
from legato.durable.worker import SAFETY_POLL

TESTS = Path(__file__).parent


def worker_process(db: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "news_workflows", "--store", db],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


async def test_another_process_starts_work_and_answers_signals_within_a_tick(sqlite_db):
    proc = worker_process(sqlite_db)
    try:
        async with legato.Runtime(sqlite_db, worker=False) as client:
            assert await client.run(news_workflows.news_double, 1, id="warm") == 2  # it is up
            starts = []
            for i in range(5):
                began = time.monotonic()
                assert await client.run(news_workflows.news_double, i, id=f"d{i}") == 2 * i
                starts.append(time.monotonic() - began)
            handle = await client.start(news_workflows.ping_pong, 5, id="pp")
            round_trips = []
            for i in range(5):
                began = time.monotonic()
                await handle.signal("ping")
                assert await handle.get_event(f"pong-{i}", timeout=SAFETY_POLL) == i
                round_trips.append(time.monotonic() - began)
            assert await handle.result(timeout=SAFETY_POLL) == 5
    finally:
        proc.kill()
        proc.wait()
    # start, run, and see the result in another process; a signal there and back
    assert max(starts) < 0.25, starts
    assert max(round_trips) < 0.25, round_trips


async def test_news_is_pruned_but_keeps_counting_up(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        for i in range(3):
            await rt.run(news_workflows.news_double, i, id=f"n{i}")
    with sqlite3.connect(sqlite_db) as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM news ORDER BY seq")]
        conn.execute("DELETE FROM news")  # as a prune leaves it
    assert kinds.count("finish") == 3
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(news_workflows.news_double, 9, id="after")
    with sqlite3.connect(sqlite_db) as conn:
        (low,) = conn.execute("SELECT min(seq) FROM news").fetchone()
    assert low > len(kinds)  # AUTOINCREMENT: a reader's "since seq N" never misses a row
