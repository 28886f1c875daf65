"""Queue benchmarks, each beside a baseline measured in the same run.

(h) dispatch throughput: N one-step workflows through a queue with
    concurrency 100, from the first enqueue to the last result, against the
    same workflows started without a queue on a Runtime(concurrency=100);
(i) enqueue-to-start latency: from ``enqueue`` to the first step's body
    running, one at a time (median, against ``rt.start`` without a queue).

Run with ``python bench/bench_queue.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import legato

DISPATCH = legato.Queue("bench_dispatch", concurrency=100)
started: dict[str, float] = {}


@legato.step
async def mark(key: str) -> None:
    started[key] = time.perf_counter()


@legato.workflow(name="bench_queued")
async def queued(key: str) -> None:
    await mark(key)


async def dispatch_per_s(path: Path, n: int, *, through_queue: bool) -> float:
    async with legato.Runtime(str(path), concurrency=100 if not through_queue else 1000,
                              queues=[DISPATCH]) as rt:
        queue = DISPATCH if through_queue else None
        await rt.run(queued, "warm-up", id="warm-up")
        start = time.perf_counter()
        handles = await asyncio.gather(*(rt.start(queued, f"d{i}", id=f"d{i}", queue=queue)
                                         for i in range(n)))
        await asyncio.gather(*(h.result() for h in handles))
        return n / (time.perf_counter() - start)


async def start_latency_ms(path: Path, n: int, *, through_queue: bool) -> list[float]:
    async with legato.Runtime(str(path), queues=[DISPATCH]) as rt:
        queue = DISPATCH if through_queue else None
        await rt.run(queued, "warm-up", id="warm-up")
        samples = []
        for i in range(n):
            key = f"l{i}"
            begin = time.perf_counter()
            handle = await rt.start(queued, key, id=key, queue=queue)
            await handle.result()
            samples.append((started[key] - begin) * 1e3)
        return samples


def run(workflows: int = 2000, samples: int = 300) -> list[dict[str, Any]]:
    """Run the queue benchmarks; return one row per figure."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        plain = asyncio.run(dispatch_per_s(tmpdir / "plain.db", workflows, through_queue=False))
        rate = asyncio.run(dispatch_per_s(tmpdir / "queue.db", workflows, through_queue=True))
        direct = asyncio.run(start_latency_ms(tmpdir / "direct.db", samples,
                                              through_queue=False))
        latency = asyncio.run(start_latency_ms(tmpdir / "lat.db", samples, through_queue=True))
    p50, base = statistics.median(latency), statistics.median(direct)
    return [
        {"bench": f"(h) queue dispatch, {workflows} workflows, concurrency 100",
         "value": rate, "unit": "workflows/s", "baseline": plain,
         "baseline_name": "no queue, Runtime(concurrency=100)", "ratio": rate / plain,
         "target": "≥ 1,000 workflows/s", "ok": rate >= 1000},
        {"bench": "(i) enqueue → first step starts", "value": p50, "unit": "ms p50",
         "baseline": base, "baseline_name": "rt.start without a queue, p50",
         "ratio": p50 / base, "target": "p50 ≤ 5 ms", "ok": p50 <= 5.0},
    ]


if __name__ == "__main__":
    from table import print_table

    print_table("queues (SQLite, synchronous=NORMAL)", run())
