"""Durable-engine benchmarks, each beside a baseline measured in the same run.

(a) one workflow of N sequential trivial steps: µs per step, against a raw
    sqlite3 WAL insert+commit loop of the same payload (same synchronous mode);
(b) many concurrent workflows, 10 steps each: steps per second;
(c) ``rt.start`` → result latency of a one-step workflow (median, p90);
(g) a 1,000-way durable fan-out with ``legato.parallel`` and its join.

Run with ``make bench`` (or ``python bench/bench_durable.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import legato

PAYLOAD = b'{"value": "a trivial step result, about a hundred bytes of JSON payload here"}'


@legato.step
async def trivial(i: int) -> int:
    return i


@legato.workflow(name="bench_sequential")
async def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await trivial(i)
    return total


@legato.workflow(name="bench_ten")
async def ten_steps() -> int:
    for i in range(10):
        await trivial(i)
    return 10


@legato.workflow(name="bench_fan_out")
async def fan_out(n: int) -> int:
    return sum(await legato.parallel(trivial(i) for i in range(n)))


@legato.workflow(name="bench_one")
async def one_step() -> int:
    return await trivial(1)


def raw_sqlite_commit_us(path: Path, n: int) -> float:
    """µs per INSERT+COMMIT with the same schema shape and synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE steps (workflow_id TEXT, position TEXT, kind TEXT, name TEXT, ok INTEGER,"
        " value BLOB, created_at REAL, PRIMARY KEY (workflow_id, position)) WITHOUT ROWID")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)",
                     ("wf", str(i), "step", "trivial", 1, PAYLOAD, time.time()))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n * 1e6


async def legato_sequential_us(path: Path, n: int) -> float:
    async with legato.Runtime(str(path)) as rt:
        await rt.run(sequential, 10, id="warm-up")
        start = time.perf_counter()
        await rt.run(sequential, n, id="seq")
        return (time.perf_counter() - start) / n * 1e6


async def legato_concurrent_steps_per_s(path: Path, workflows: int) -> float:
    async with legato.Runtime(str(path), concurrency=workflows) as rt:
        start = time.perf_counter()
        handles = [await rt.start(ten_steps, id=f"c{i}") for i in range(workflows)]
        await asyncio.gather(*(h.result() for h in handles))
        return workflows * 10 / (time.perf_counter() - start)


async def legato_start_latency_ms(path: Path, n: int) -> list[float]:
    async with legato.Runtime(str(path)) as rt:
        await rt.run(one_step, id="warm-up")
        samples = []
        for i in range(n):
            start = time.perf_counter()
            await rt.run(one_step, id=f"l{i}")
            samples.append((time.perf_counter() - start) * 1e3)
        return samples


async def legato_fan_out_s(path: Path, n: int) -> float:
    async with legato.Runtime(str(path)) as rt:
        await rt.run(fan_out, 10, id="warm-up")
        start = time.perf_counter()
        await rt.run(fan_out, n, id="fan")
        return time.perf_counter() - start


def run(sequential_steps: int = 1000, concurrent: int = 1000) -> list[dict[str, Any]]:
    """Run the durable benchmarks; return one row per figure."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        raw = raw_sqlite_commit_us(tmpdir / "raw.db", sequential_steps)
        seq = asyncio.run(legato_sequential_us(tmpdir / "seq.db", sequential_steps))
        rate = asyncio.run(legato_concurrent_steps_per_s(tmpdir / "conc.db", concurrent))
        latency = asyncio.run(legato_start_latency_ms(tmpdir / "lat.db", 300))
        fan = asyncio.run(legato_fan_out_s(tmpdir / "fan.db", 1000))
    p50 = statistics.median(latency)
    p90 = statistics.quantiles(latency, n=10)[-1]
    return [
        {"bench": f"(a) sequential step, 1 workflow x {sequential_steps}", "value": seq,
         "unit": "µs/step", "baseline": raw, "baseline_name": "raw sqlite3 WAL commit",
         "ratio": seq / raw, "target": "ratio ≤ 1.3", "ok": seq / raw <= 1.3},
        {"bench": f"(b) {concurrent} concurrent workflows x 10 steps", "value": rate,
         "unit": "steps/s", "baseline": 1e6 / raw, "baseline_name": "raw commits/s",
         "ratio": rate / (1e6 / raw), "target": "≥ 50,000 steps/s", "ok": rate >= 50_000},
        {"bench": "(c) start → result, one-step workflow", "value": p50, "unit": "ms p50",
         "baseline": raw / 1e3, "baseline_name": "raw sqlite3 WAL commit, ms",
         "ratio": p50 / (raw / 1e3), "target": "ratio ≤ 6", "ok": p50 / (raw / 1e3) <= 6},
        {"bench": "(c) start → result, one-step workflow", "value": p90, "unit": "ms p90",
         "target": "-", "ok": True},
        {"bench": "(g) 1,000-way durable fan-out and join", "value": fan, "unit": "s",
         "baseline": None, "baseline_name": "", "ratio": None, "target": "< 0.25 s",
         "ok": fan < 0.25},
    ]


if __name__ == "__main__":
    from table import print_table

    print_table("durable engine (SQLite, synchronous=NORMAL)", run())
