"""Cost that stays flat as work grows (issue 19), each beside a baseline in the same run.

(n) suspend N workflows (start them; each sleeps an hour and is unloaded) and
    wake them all (the clock jumps an hour), for N = 1,000, 10,000, 100,000,
    on one worker of the default concurrency (1,000 at a time, the rest
    claimed as slots free):
    µs per workflow, against the same figure at the smallest N; the raw
    sqlite3 WAL commit of the same run is given beside it. The best of three
    tries up to 10,000, one try at 100,000;
(o) with N workflows waiting and nothing due: the slowest of the store calls
    the worker makes on its event loop when it goes idle (``claim``,
    ``next_lease_expiry``, ``next_wake``), each timed 50 times, median.

Run with ``python bench/bench_scale.py [N ...]``.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import legato
from legato.store import ClaimRequest

SIZES = (1_000, 10_000, 100_000)
CONCURRENCY = 1_000


@legato.workflow(name="bench_scale_nap")
async def nap() -> None:
    await legato.sleep("1h")


def raw_sqlite_commit_us(path: Path, n: int = 2000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (str(i), b"x" * 100))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n * 1e6


def _left(db: Path, statuses: tuple[str, ...]) -> bool:
    """Whether any workflow is still in one of ``statuses`` (one index probe, any N)."""
    marks = ", ".join("?" * len(statuses))
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT EXISTS (SELECT 1 FROM workflows WHERE status IN ({marks}))",
                            statuses).fetchone()[0] == 1


async def _until_none(db: Path, *statuses: str) -> None:
    while _left(db, statuses):  # noqa: ASYNC110 (the store is the only place it shows)
        await asyncio.sleep(0.05)


async def _timed(call: Any, repeat: int = 50) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


async def scale(db: Path, n: int) -> dict[str, float]:
    """µs per workflow to suspend and to wake ``n`` sleepers; ms per idle store call."""
    clock = legato.VirtualClock(start=0.0, autojump=False)
    # The default concurrency (1,000): past it, started workflows wait pending and
    # woken ones waiting, and are claimed as slots free, as on a busy worker.
    async with legato.Runtime(str(db), clock=clock, concurrency=CONCURRENCY) as rt:
        gc.collect()
        start = time.perf_counter()
        for first in range(0, n, 1000):
            await asyncio.gather(*(rt.start(nap, id=f"nap-{i}")
                                   for i in range(first, min(n, first + 1000))))
        await _until_none(db, "pending", "running")  # every one started is waiting
        suspended = time.perf_counter() - start
        store = rt.store
        calls = {
            "claim": lambda: store.claim(ClaimRequest(
                owner="bench", lease_until=time.time() + 60, real_now=time.time(),
                durable_now=clock.now(), limit=100, names=["bench_scale_nap"])),
            "next_lease_expiry": store.next_lease_expiry,
            "next_wake": lambda: store.next_wake(clock.now()),
        }
        idle = {name: await _timed(call) for name, call in calls.items()}
        start = time.perf_counter()
        await clock.advance(3600)
        await _until_none(db, "pending", "running", "waiting")
        woken = time.perf_counter() - start
    return {"suspend_us": suspended / n * 1e6, "wake_us": woken / n * 1e6, **idle}


def _best(tries: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's best of ``tries`` (this machine is shared: others' load only adds)."""
    return {key: min(t[key] for t in tries) for key in tries[0]}


def run(sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """Run the scale benchmarks; return one row per figure."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        raw = raw_sqlite_commit_us(tmpdir / "raw.db")
        figures = {n: _best([asyncio.run(scale(tmpdir / f"scale{n}-{r}.db", n))
                             for r in range(3 if n <= 10_000 else 1)]) for n in sizes}
    first = figures[sizes[0]]
    rows: list[dict[str, Any]] = []
    for what, key in (("suspend", "suspend_us"), ("wake", "wake_us")):
        for n in sizes:
            value = figures[n][key]
            ratio = value / first[key]
            rows.append({
                "bench": f"(n) {what} {n:,} sleepers", "value": value, "unit": "µs/workflow",
                "baseline": first[key], "baseline_name": f"same at {sizes[0]:,}",
                "ratio": ratio, "target": "ratio ≤ 1.3", "ok": ratio <= 1.3})
        last = figures[sizes[-1]][key]
        rows.append({
            "bench": f"(n) {what} {sizes[-1]:,} sleepers", "value": 1e6 / last,
            "unit": "workflows/s", "baseline": raw, "baseline_name": "raw WAL commit, µs",
            "ratio": last / raw, "target": "≥ 30,000/s" if what == "wake" else "-",
            "ok": what != "wake" or 1e6 / last >= 30_000})
    for n in sizes:
        slowest = max(("claim", "next_lease_expiry", "next_wake"), key=lambda k: figures[n][k])
        value = figures[n][slowest]
        rows.append({
            "bench": f"(o) idle store calls, {n:,} waiting ({slowest} slowest)", "value": value,
            "unit": "ms", "baseline": raw / 1e3, "baseline_name": "raw WAL commit, ms",
            "ratio": value / (raw / 1e3), "target": "≤ 2 ms", "ok": value <= 2.0})
    return rows


if __name__ == "__main__":
    from table import print_table

    sizes = tuple(int(a) for a in sys.argv[1:]) or SIZES
    print_table("scale (SQLite)", run(sizes))
