"""PostgreSQL round trips (issue 19), each beside raw asyncpg in the same run.

(p) statements sent per one-step workflow (``rt.run`` of a workflow with one
    trivial step, sequentially, one worker), counted at the driver: every
    statement asyncpg sends (a simple query of several statements counts each,
    ``executemany`` each row), so asyncpg's pool reset on release counts too;
(q) a sequential durable step, 1 workflow x N steps, against a raw asyncpg
    autocommit INSERT of the same row on a held connection (one round trip
    and one commit: the floor of a durable step);
(r) start → result of a one-step workflow (median), against the same raw INSERT.

Skips, saying so, when no PostgreSQL answers (see ``bench_postgres``).
Run with ``python bench/bench_pg_trips.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
from bench_postgres import _drop, _pg_base

import legato

PAYLOAD = b'{"value": "a trivial step result, about a hundred bytes of JSON payload here"}'


@legato.step
async def trivial(i: int) -> int:
    return i


@legato.workflow(name="bench_pg_one")
async def one_step() -> int:
    return await trivial(1)


@legato.workflow(name="bench_pg_sequential")
async def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await trivial(i)
    return total


class _Counter:
    """Counts the statements every asyncpg connection of this process sends."""

    def __init__(self) -> None:
        self.count = 0
        self.texts: dict[str, int] = {}

    def add(self, query: str, n: int = 1) -> None:
        self.count += n
        key = " ".join(query.split())[:70]
        self.texts[key] = self.texts.get(key, 0) + n

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Counter]:
        conn_cls: Any = asyncpg.connection.Connection
        execute, _execute, _executemany = conn_cls.execute, conn_cls._execute, conn_cls._executemany
        counter = self

        async def counted_execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            if not args:  # a simple query: maybe several statements
                for part in filter(str.strip, query.split(";")):
                    counter.add(part)
            return await execute(self, query, *args, **kw)

        async def counted__execute(self: Any, query: str, args: Any, *rest: Any, **kw: Any
                                   ) -> Any:
            counter.add(query)
            return await _execute(self, query, args, *rest, **kw)

        async def counted__executemany(self: Any, query: str, args: Any, *rest: Any,
                                       **kw: Any) -> Any:
            args = list(args)
            counter.add(query, len(args))
            return await _executemany(self, query, args, *rest, **kw)

        conn_cls.execute, conn_cls._execute = counted_execute, counted__execute
        conn_cls._executemany = counted__executemany
        try:
            yield self
        finally:
            conn_cls.execute, conn_cls._execute = execute, _execute
            conn_cls._executemany = _executemany


async def statements_per_workflow(url: str, n: int) -> tuple[float, dict[str, int]]:
    async with legato.Runtime(url) as rt:
        for i in range(5):
            await rt.run(one_step, id=f"warm-{i}")
        await asyncio.sleep(0.2)  # the claim loop settles after the warm-up
        counter = _Counter()
        with counter.installed():
            for i in range(n):
                await rt.run(one_step, id=f"count-{i}")
            await asyncio.sleep(0.2)  # what the last finish sets off is counted too
        return counter.count / n, {k: v for k, v in sorted(
            counter.texts.items(), key=lambda kv: -kv[1])}


async def raw_insert_us(base: str, n: int) -> float:
    """µs per autocommit INSERT of a step-sized row on a held connection."""
    conn = await asyncpg.connect(base)
    table = f"legato_bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(
            f"CREATE TABLE {table} (workflow_id text, position text, kind text, name text,"
            " ok boolean, value bytea, created_at double precision,"
            " PRIMARY KEY (workflow_id, position))")
        sql = f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)"
        for i in range(50):
            await conn.execute(sql, "warm", str(i), "step", "trivial", True, PAYLOAD, 0.0)
        start = time.perf_counter()
        for i in range(n):
            await conn.execute(sql, "wf", str(i), "step", "trivial", True, PAYLOAD, time.time())
        return (time.perf_counter() - start) / n * 1e6
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def sequential_step_us(url: str, n: int) -> float:
    async with legato.Runtime(url) as rt:
        await rt.run(sequential, 20, id="warm-up")
        start = time.perf_counter()
        await rt.run(sequential, n, id="seq")
        return (time.perf_counter() - start) / n * 1e6


async def start_result_ms(url: str, n: int) -> list[float]:
    async with legato.Runtime(url) as rt:
        for i in range(5):
            await rt.run(one_step, id=f"warm-{i}")
        samples = []
        for i in range(n):
            start = time.perf_counter()
            await rt.run(one_step, id=f"l{i}")
            samples.append((time.perf_counter() - start) * 1e3)
        return samples


async def _run(n: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    base = await _pg_base()
    if base is None:
        return [], {}
    sep = "&" if "?" in base else "?"
    urls = [f"{base}{sep}schema=legato_bench_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    try:
        per_wf, texts = await statements_per_workflow(urls[0], 100)
        raw = await raw_insert_us(base, n)
        seq = await sequential_step_us(urls[1], n)
        latency = await start_result_ms(urls[2], 200)
    finally:
        for url in urls:
            await _drop(base, url)
    p50 = statistics.median(latency)
    rows = [
        {"bench": "(p) statements per one-step workflow", "value": per_wf,
         "unit": "statements", "baseline": 1.0, "baseline_name": "raw INSERT",
         "ratio": per_wf, "target": "≤ 12", "ok": per_wf <= 12},
        {"bench": f"(q) sequential step, 1 workflow x {n}", "value": seq, "unit": "µs/step",
         "baseline": raw, "baseline_name": "raw asyncpg INSERT, held conn",
         "ratio": seq / raw, "target": "ratio ≤ 1.5", "ok": seq / raw <= 1.5},
        {"bench": "(r) start → result, one-step workflow", "value": p50, "unit": "ms p50",
         "baseline": raw / 1e3, "baseline_name": "raw asyncpg INSERT, ms",
         "ratio": p50 / (raw / 1e3), "target": "ratio ≤ 5", "ok": p50 / (raw / 1e3) <= 5},
    ]
    return rows, texts


def run(n: int = 1000) -> list[dict[str, Any]]:
    """Run the round-trip benchmarks; ``[]`` when no server answers."""
    return asyncio.run(_run(n))[0]


if __name__ == "__main__":
    import sys

    from table import print_table

    rows, texts = asyncio.run(_run(1000))
    print_table("PostgreSQL round trips vs raw asyncpg", rows)
    if "-v" in sys.argv:
        print("\nstatements per workflow, by text:")
        for text, count in texts.items():
            print(f"  {count / 100:5.2f}  {text}")
