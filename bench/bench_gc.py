"""Garbage collection as fan-outs grow (issue 19), each beside a baseline in the same run.

(s) a durable fan-out (``legato.parallel`` of N trivial steps in a workflow,
    SQLite) at N = 1,000 and 10,000: µs per branch, and the share of the time
    spent in the collector (``gc.callbacks``); the 10,000-way figure against
    the 1,000-way one;
(t) the same outside workflows (``legato.parallel`` of N coroutines returning
    at once), against ``asyncio.gather`` of the same at the same N.

Run with ``python bench/bench_gc.py``.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import legato

SIZES = (1_000, 10_000)


@legato.step
async def trivial(i: int) -> int:
    return i


@legato.workflow(name="bench_gc_fan_out")
async def fan_out(n: int) -> int:
    return sum(await legato.parallel(trivial(i) for i in range(n)))


class CollectorTime:
    """Seconds spent in the garbage collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self) -> CollectorTime:
        gc.collect()
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def durable_fan_out(path: Path, n: int, rounds: int = 3) -> tuple[float, float]:
    """(µs per branch, collector share) of the best of ``rounds`` n-way durable fan-outs."""
    best = (float("inf"), 0.0)
    async with legato.Runtime(str(path)) as rt:
        await rt.run(fan_out, 10, id="warm-up")
        for r in range(rounds):
            with CollectorTime() as collector:
                start = time.perf_counter()
                await rt.run(fan_out, n, id=f"fan-{n}-{r}")
                elapsed = time.perf_counter() - start
            best = min(best, (elapsed / n * 1e6, collector.seconds / elapsed))
    return best


async def _one() -> int:
    return 1


async def plain_fan_out(n: int, *, gather: bool, budget: float = 0.5) -> tuple[float, float]:
    """(µs per branch, collector share) of n-way fan-outs repeated for ``budget`` seconds."""
    async def once() -> object:
        coros = [_one() for _ in range(n)]
        return await (asyncio.gather(*coros) if gather else legato.parallel(coros))

    await once()
    rounds = 0
    with CollectorTime() as collector:
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget:
            await once()
            rounds += 1
    return elapsed / (rounds * n) * 1e6, collector.seconds / elapsed


def run(sizes: tuple[int, int] = SIZES) -> list[dict[str, Any]]:
    """Run the garbage-collection benchmarks; return one row per figure."""
    small, big = sizes
    with tempfile.TemporaryDirectory() as tmp:
        durable = {n: asyncio.run(durable_fan_out(Path(tmp) / f"fan{n}.db", n)) for n in sizes}
    plain = {(n, g): asyncio.run(plain_fan_out(n, gather=g)) for n in sizes for g in (False, True)}
    rows: list[dict[str, Any]] = []
    for n in sizes:
        us, share = durable[n]
        ratio = us / durable[small][0]
        rows.append({
            "bench": f"(s) durable fan-out, {n:,} branches ({share:.0%} in gc)", "value": us,
            "unit": "µs/branch", "baseline": durable[small][0],
            "baseline_name": f"same at {small:,}", "ratio": ratio,
            "target": "ratio ≤ 1.2, gc < 10 %", "ok": ratio <= 1.2 and share < 0.10})
    for n in sizes:
        us, share = plain[n, False]
        base, base_share = plain[n, True]
        rows.append({
            "bench": f"(t) parallel, {n:,} coroutines ({share:.0%} in gc)", "value": us,
            "unit": "µs/branch", "baseline": base,
            "baseline_name": f"asyncio.gather ({base_share:.0%} in gc)", "ratio": us / base,
            "target": "ratio ≤ 2", "ok": us / base <= 2})
    growth = plain[big, False][0] / plain[small, False][0]
    rows.append({
        "bench": f"(t) parallel, {big:,} vs {small:,} coroutines", "value": growth,
        "unit": "x per branch", "baseline": plain[big, True][0] / plain[small, True][0],
        "baseline_name": "asyncio.gather, same", "ratio": None, "target": "≤ 1.2",
        "ok": growth <= 1.2})
    return rows


if __name__ == "__main__":
    from table import print_table

    print_table("garbage collection as fan-outs grow", run())
