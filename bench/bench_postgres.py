"""PostgreSQL benchmarks, each beside the same workload on SQLite in the same run.

(j) enqueue-to-start latency with 2 idle workers: a client Runtime
    (``worker=False``) starts one-step workflows one at a time; two worker
    Runtimes (own pools, own LISTEN connections, as two processes would have)
    wait on NOTIFY. p50 and p99, against SQLite, where workers read the news table;
(k) durable steps/s: 200 workflows of 10 trivial steps through 1 and 2 worker
    Runtimes, against one SQLite worker. Both Runtimes share this process's
    event loop, so "2 workers" measures contention, not two machines' worth;
(l) durable steps/s with 1 and 2 real worker processes (``python -m legato
    worker bench_postgres --store URL``), the same workload on SQLite (same
    number of worker processes on one file) in the same run for the ratio.
    (k) and (l) start the workflows one at a time from a client while the
    workers run, so the client's start rate bounds them: a trickle, where
    more workers only split the same work into smaller batches;
(m) 1 and 2 worker processes draining a backlog of 1,000 workflows made
    before they start: their own throughput, from the first recorded step to
    the last finish, so process start-up doesn't count.

Skips, saying so, when no PostgreSQL answers at ``$LEGATO_TEST_POSTGRES`` or
127.0.0.1:5432. Run with ``python bench/bench_postgres.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import legato

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
BENCH = Path(__file__).resolve().parent
started: dict[str, float] = {}


@legato.step
async def mark(key: str) -> None:
    started[key] = time.perf_counter()


@legato.workflow(name="bench_pg_mark")
async def marked(key: str) -> None:
    await mark(key)


@legato.step
async def trivial(i: int) -> int:
    return i


@legato.workflow(name="bench_pg_ten")
async def ten(n: int) -> int:
    return sum([await trivial(i) for i in range(10)])


async def _pg_base() -> str | None:
    """The server's URL, or ``None`` (with a line saying why) when none answers."""
    base = os.environ.get("LEGATO_TEST_POSTGRES") or PG_DEFAULT
    try:
        import asyncpg

        conn = await asyncpg.connect(base, timeout=3)
    except Exception as exc:
        print(f"PostgreSQL benchmarks skipped: {base} does not answer ({exc!r})")
        return None
    await conn.close()
    return base


async def _drop(base: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base)
    with contextlib.suppress(Exception):
        await conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')
    await conn.close()


async def start_latency_ms(url: str, n: int) -> list[float]:
    async with (legato.Runtime(url, worker=False) as client, legato.Runtime(url),
                legato.Runtime(url)):
        await client.run(marked, "warm-up")
        samples = []
        for i in range(n):
            key = f"l{i}-{uuid.uuid4().hex[:6]}"
            begin = time.perf_counter()
            handle = await client.start(marked, key)
            await handle.result()
            samples.append((started[key] - begin) * 1e3)
        return samples


async def steps_per_s(url: str, workers: int, n: int = 200) -> float:
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(legato.Runtime(url, worker=False))
        for _ in range(workers):
            await stack.enter_async_context(legato.Runtime(url))
        begin = time.perf_counter()
        handles = [await client.start(ten, i) for i in range(n)]
        await asyncio.gather(*(h.result() for h in handles))
        return n * 10 / (time.perf_counter() - begin)


async def steps_per_s_processes(url: str, workers: int, n: int = 200) -> float:
    """Like :func:`steps_per_s`, but served by ``workers`` real worker processes."""
    async with legato.Runtime(url, worker=False) as client:  # makes the schema first
        procs = await _worker_processes(url, workers)
        try:
            await asyncio.gather(*[client.run(ten, -1 - i) for i in range(2 * workers)])
            await asyncio.sleep(1.0)  # every process is up (imports done, serving)
            begin = time.perf_counter()
            handles = [await client.start(ten, i) for i in range(n)]
            await asyncio.gather(*(h.result() for h in handles))
            return n * 10 / (time.perf_counter() - begin)
        finally:
            await _stop(procs)


async def backlog_steps_per_s(url: str, workers: int, n: int = 1000) -> float:
    """Steps/s of ``workers`` worker processes draining ``n`` workflows made before they start."""
    async with legato.Runtime(url, worker=False) as client:
        handles = [await client.start(ten, i) for i in range(n)]
        procs = await _worker_processes(url, workers)
        try:
            await asyncio.gather(*(h.result() for h in handles))
        finally:
            await _stop(procs)
        # From the first step (claims take the oldest first, so it is among the
        # first made) to the last finish: process start-up doesn't count.
        first = min([(await h.info()).steps[0].at.timestamp() for h in handles[:50]])
        last = max(i.finished_at.timestamp() for i in await client.list(limit=n)
                   if i.finished_at is not None)
        return n * 10 / (last - first)


async def _worker_processes(url: str, workers: int) -> list[asyncio.subprocess.Process]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
    return [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legato", "worker", "bench_postgres", "--store", url,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(workers)]


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        proc.terminate()  # SIGTERM: the worker drains and exits
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


async def _run(samples: int) -> list[dict[str, Any]]:
    base = await _pg_base()
    if base is None:
        return []
    sep = "&" if "?" in base else "?"
    urls = [f"{base}{sep}schema=legato_bench_{uuid.uuid4().hex[:8]}" for _ in range(7)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lite = str(Path(tmp) / "lat.db")
            pg_lat = await start_latency_ms(urls[0], samples)
            lite_lat = await start_latency_ms(lite, max(10, samples // 20))
            one = await steps_per_s(urls[1], 1)
            two = await steps_per_s(urls[2], 2)
            lite_rate = await steps_per_s(str(Path(tmp) / "rate.db"), 1)
            procs = {k: await steps_per_s_processes(urls[2 + k], k) for k in (1, 2)}
            lite_procs = {k: await steps_per_s_processes(f"sqlite:///{Path(tmp) / f'p{k}.db'}", k)
                          for k in (1, 2)}
            backlog = {k: await backlog_steps_per_s(urls[4 + k], k) for k in (1, 2)}
            lite_backlog = await backlog_steps_per_s(f"sqlite:///{Path(tmp) / 'b2.db'}", 2)
    finally:
        for url in urls:
            await _drop(base, url)
    p50, p99, lite50 = _p(pg_lat, 50), _p(pg_lat, 99), statistics.median(lite_lat)
    return [
        {"bench": "(j) enqueue → start, 2 idle workers", "value": p50, "unit": "ms p50",
         "baseline": lite50, "baseline_name": "SQLite (news table), p50",
         "ratio": p50 / lite50, "target": "p50 ≤ 5 ms", "ok": p50 <= 5.0},
        {"bench": "(j) enqueue → start, 2 idle workers", "value": p99, "unit": "ms p99",
         "target": "p99 ≤ 25 ms", "ok": p99 <= 25.0},
        {"bench": "(k) durable steps, 1 worker", "value": one, "unit": "steps/s",
         "baseline": lite_rate, "baseline_name": "SQLite, 1 worker",
         "ratio": one / lite_rate, "target": "-", "ok": True},
        {"bench": "(k) durable steps, 2 workers, 1 process", "value": two, "unit": "steps/s",
         "baseline": one, "baseline_name": "PostgreSQL, 1 worker",
         "ratio": two / one, "target": "-", "ok": True},
        *({"bench": f"(l) durable steps, {k} worker process{'es' if k > 1 else ''}",
           "value": procs[k], "unit": "steps/s", "baseline": lite_procs[k],
           "baseline_name": f"SQLite, {k} worker process{'es' if k > 1 else ''}",
           "ratio": procs[k] / lite_procs[k], "target": "-", "ok": True} for k in (1, 2)),
        {"bench": "(m) backlog of 1,000, 1 worker process", "value": backlog[1],
         "unit": "steps/s", "target": "-", "ok": True},
        {"bench": "(m) backlog of 1,000, 2 worker processes", "value": backlog[2],
         "unit": "steps/s", "baseline": backlog[1], "baseline_name": "PostgreSQL, 1 process",
         "ratio": backlog[2] / backlog[1], "target": "-", "ok": True},
        {"bench": "(m) backlog of 1,000, 2 worker processes, SQLite", "value": lite_backlog,
         "unit": "steps/s", "baseline": backlog[2], "baseline_name": "PostgreSQL, 2 processes",
         "ratio": lite_backlog / backlog[2], "target": "-", "ok": True},
    ]


def run(samples: int = 200) -> list[dict[str, Any]]:
    """Run the PostgreSQL benchmarks; ``[]`` when no server answers."""
    return asyncio.run(_run(samples))


if __name__ == "__main__":
    from table import print_table

    print_table("PostgreSQL (news-driven workers) vs SQLite", run())
