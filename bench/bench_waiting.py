"""Waiting benchmarks: signal round trip, memory of sleepers, waking many at once.

(d) signal → workflow resumes → event observed, in one process (median);
(e) resident memory per suspended workflow with 100,000 sleeping;
(f) time to wake and finish 10,000 workflows whose sleep ends at the same moment.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import legato


@legato.workflow(name="bench_ping")
async def ping(rounds: int) -> int:
    for i in range(rounds):
        await legato.wait_for_signal("ping")
        await legato.set_event("pong", i)
    return rounds


@legato.workflow(name="bench_nap")
async def nap() -> None:
    await legato.sleep("1h")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")))


def _count(db: Path, status: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM workflows WHERE status = ?", (status,)).fetchone()[0])


async def signal_round_trip_ms(db: Path, rounds: int) -> list[float]:
    async with legato.Runtime(str(db)) as rt:
        handle = await rt.start(ping, rounds, id="ping")
        samples = []
        for i in range(rounds):
            start = time.perf_counter()
            await handle.signal("ping")
            while await handle.get_event("pong") != i:  # noqa: ASYNC110
                await asyncio.sleep(0)  # store reads don't yield; let the workflow run
            samples.append((time.perf_counter() - start) * 1e3)
        await handle.result()
        return samples


async def _sleepers(rt: legato.Runtime, db: Path, first: int, n: int) -> None:
    for batch in range(first, first + n, 1000):
        await asyncio.gather(*(rt.start(nap, id=f"nap-{i}") for i in range(batch, batch + 1000)))
    for _ in range(6000):  # the store is the only place the status shows
        if _count(db, "waiting") >= first + n:
            break
        await asyncio.sleep(0.1)
    gc.collect()


async def memory_per_sleeper(db: Path, n: int) -> tuple[float, float]:
    """(RSS bytes, database bytes) per suspended workflow, after a 10,000 warm-up."""
    async with legato.Runtime(str(db)) as rt:
        await _sleepers(rt, db, 0, 10_000)
        rss, size = _rss(), _size(db)
        await _sleepers(rt, db, 10_000, n)
        grown, disk = _rss() - rss, _size(db) - size
    return grown / n, disk / n


async def wake_many_s(db: Path, n: int) -> float:
    clock = legato.VirtualClock(start=0.0, autojump=False)
    async with legato.Runtime(str(db), clock=clock, concurrency=n) as rt:
        await _sleepers(rt, db, 0, n)
        start = time.perf_counter()
        await clock.advance(3600)
        for _ in range(60_000):
            if _count(db, "succeeded") >= n:
                break
            await asyncio.sleep(0.01)
        return time.perf_counter() - start


def run(sleepers: int = 100_000, wakers: int = 10_000) -> list[dict[str, Any]]:
    """Run the waiting benchmarks; return one row per figure."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        trips = asyncio.run(signal_round_trip_ms(tmpdir / "sig.db", 200))
        rss, disk = asyncio.run(memory_per_sleeper(tmpdir / "mem.db", sleepers))
        wake = asyncio.run(wake_many_s(tmpdir / "wake.db", wakers))
    return [
        {"bench": "(d) signal → resume → event, in-process", "value": statistics.median(trips),
         "unit": "ms p50", "baseline": statistics.quantiles(trips, n=10)[-1],
         "baseline_name": "p90", "ratio": None, "target": "no polling delay", "ok": True},
        {"bench": f"(e) memory per suspended workflow ({sleepers:,})", "value": rss,
         "unit": "B RSS", "baseline": disk, "baseline_name": "B on disk", "ratio": None,
         "target": "no memory beyond rows", "ok": rss < 1024},
        {"bench": f"(f) wake {wakers:,} sleepers due at once", "value": wake, "unit": "s",
         "baseline": wakers / wake, "baseline_name": "workflows/s", "ratio": None,
         "target": "-", "ok": True},
    ]


if __name__ == "__main__":
    from table import print_table

    print_table("waiting (SQLite)", run())
