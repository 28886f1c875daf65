"""Per-future overhead of legato's primitives beside plain asyncio, measured in the same run.

Run standalone (``.venv/bin/python bench/bench_flow.py``) for a table, or call
:func:`run` from a bench runner for the rows. Each row is one primitive with
``n`` trivial branches (``async def`` returning at once) next to the asyncio
code one would write for it; ``ratio`` is legato's time over the baseline's.
The "losers" rows have one branch that returns at once and ``n - 1`` blocked
ones, so they also measure cancelling and awaiting the losers. The last two
rows (``n`` sequential ``timeout`` calls, ``n`` spawned futures) are for
information.

Target (DESIGN.md): ratio <= 2.0 outside workflows.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from legato.flow import parallel, race, select, spawn, timeout, vote

TARGET = 2.0
SIZES = (10, 1000)
ROUNDS = 7
BUDGET = 0.02  # seconds of work per round and measurement


async def _one() -> int:
    return 1


async def _blocked(event: asyncio.Event) -> int:
    await event.wait()
    return 0


# -- asyncio baselines ----------------------------------------------------


async def _gather(n: int) -> object:
    return await asyncio.gather(*[_one() for _ in range(n)])


async def _first(coros: list[Coroutine[Any, Any, int]]) -> int:
    tasks = [asyncio.ensure_future(c) for c in coros]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    return next(iter(done)).result()


async def _wait_first(n: int) -> object:
    return await _first([_one() for _ in range(n)])


async def _gather_count(n: int) -> object:
    values = await asyncio.gather(*[_one() for _ in range(n)])
    return collections.Counter(values).most_common(1)[0][0]


async def _wait_named(n: int) -> object:
    arms = {f"a{i}": asyncio.ensure_future(_one()) for i in range(n)}
    done, pending = await asyncio.wait(arms.values(), return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    winner = next(iter(done))
    return next(name for name, task in arms.items() if task is winner), winner.result()


async def _wait_losers(n: int) -> object:
    event = asyncio.Event()
    return await _first([_one()] + [_blocked(event) for _ in range(n - 1)])


# -- legato ---------------------------------------------------------------


async def _parallel(n: int) -> object:
    return await parallel([_one() for _ in range(n)])


async def _race(n: int) -> object:
    return await race([_one() for _ in range(n)])


async def _vote(n: int) -> object:
    return await vote([_one() for _ in range(n)])


async def _select(n: int) -> object:
    return await select(**{f"a{i}": _one() for i in range(n)})


async def _race_losers(n: int) -> object:
    event = asyncio.Event()
    return await race([_one()] + [_blocked(event) for _ in range(n - 1)])


async def _timeouts(n: int) -> object:
    for _ in range(n):
        await timeout(60, _one())
    return None


async def _asyncio_timeouts(n: int) -> object:
    for _ in range(n):
        async with asyncio.timeout(60):
            await _one()
    return None


async def _spawns(n: int) -> object:
    futures = [spawn(_one()) for _ in range(n)]
    return [await f for f in futures]


async def _create_tasks(n: int) -> object:
    tasks = [asyncio.create_task(_one()) for _ in range(n)]
    return [await t for t in tasks]


CASES: list[tuple[str, Callable[[int], Awaitable[object]], str, Callable[[int], Awaitable[object]]]]
CASES = [
    ("parallel", _parallel, "asyncio.gather", _gather),
    ("race", _race, "asyncio.wait(FIRST_COMPLETED)", _wait_first),
    ("vote", _vote, "gather + Counter", _gather_count),
    ("select", _select, "asyncio.wait(FIRST_COMPLETED) by name", _wait_named),
    ("race, n-1 losers", _race_losers, "wait(FIRST_COMPLETED) + cancel", _wait_losers),
    ("timeout, n calls", _timeouts, "async with asyncio.timeout()", _asyncio_timeouts),
    ("spawn + await", _spawns, "create_task + await", _create_tasks),
]


async def _time(fn: Callable[[int], Awaitable[object]], n: int, calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(calls):
        await fn(n)
    return (time.perf_counter() - start) / calls


async def _measure() -> list[dict[str, Any]]:
    rows = []
    for n in SIZES:
        for name, fn, base_name, base in CASES:
            await fn(n)  # warm up, and calibrate the number of calls per round
            await base(n)
            probe = await _time(base, n, 3)
            calls = max(3, int(BUDGET / max(probe, 1e-7)))
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(ROUNDS):  # interleaved, best of ROUNDS: robust to a noisy machine
                theirs.append(await _time(base, n, calls))
                ours.append(await _time(fn, n, calls))
            us, base_us = min(ours) / n * 1e6, min(theirs) / n * 1e6
            rows.append(
                {
                    "bench": "flow",
                    "primitive": name,
                    "branches": n,
                    "us_per_future": round(us, 3),
                    "baseline": base_name,
                    "baseline_us_per_future": round(base_us, 3),
                    "ratio": round(us / base_us, 2),
                    "target": TARGET,
                    "ok": us / base_us <= TARGET,
                }
            )
    return rows


def run() -> list[dict[str, Any]]:
    """Measure every primitive at every size; one dict per row (see the module docstring)."""
    return asyncio.run(_measure())


def main() -> None:
    rows = run()
    print(f"python {sys.version.split()[0]}, per-future cost, best of {ROUNDS} rounds")
    header = f"{'primitive':<18}{'n':>6}{'legato µs':>11}{'asyncio µs':>12}{'ratio':>7}  baseline"
    print(header)
    print("-" * len(header) + "-" * 30)
    for r in rows:
        flag = "" if r["ok"] else "  (over target)"
        print(
            f"{r['primitive']:<18}{r['branches']:>6}{r['us_per_future']:>11.2f}"
            f"{r['baseline_us_per_future']:>12.2f}{r['ratio']:>7.2f}  {r['baseline']}{flag}"
        )


if __name__ == "__main__":
    main()
