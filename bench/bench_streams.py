"""Stream throughput, beside raw inserts measured in the same run.

(s) values/s written by a workflow running in a worker process and read by a
    client in this process (``handle.stream(key)``), from ``rt.start`` to the
    last value read: from a step (one transaction per value) and from the
    workflow's own code (a durable operation per value: the row and its
    checkpoint). The baseline is a raw insert of the same rows, one commit
    each (SQLite: ``sqlite3``, WAL, ``synchronous=NORMAL``; PostgreSQL: one
    autocommitted ``INSERT`` by asyncpg). The target is a stream's use: an
    LLM streams 20-100 tokens/s, so ≥ 200 values/s per stream keeps up with
    several at once; the ratio says what durability costs over a bare insert.

Run with ``python bench/bench_streams.py``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import legato

BENCH = Path(__file__).parent
PAYLOAD = "token "  # a typical LLM token


@legato.step
async def bench_stream_tokens(n: int) -> int:
    async with legato.stream("tokens") as out:
        for _ in range(n):
            await out.write(PAYLOAD)
    return n


@legato.workflow(name="bench_stream_step")
async def from_step(n: int) -> int:
    return await bench_stream_tokens(n)


@legato.workflow(name="bench_stream_wf")
async def from_workflow(n: int) -> int:
    async with legato.stream("tokens") as out:
        for _ in range(n):
            await out.write(PAYLOAD)
    return n


async def stream_per_s(url: str, workflow: Any, n: int) -> float:
    """Values/s from start to the last value read, the writer in another process."""
    worker = await _worker(url)
    try:
        async with legato.Runtime(url, worker=False) as client:
            warm = await client.start(workflow, 10, id="warm-up")
            assert len([v async for v in warm.stream("tokens")]) == 10
            start = time.perf_counter()
            handle = await client.start(workflow, n, id="measured")
            read = 0
            async for _ in handle.stream("tokens"):
                read += 1
            elapsed = time.perf_counter() - start
            assert read == n, read
    finally:
        await _stop(worker)
    return n / elapsed


async def _worker(url: str) -> asyncio.subprocess.Process:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legato", "worker", "bench_streams", "--store", url,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def raw_sqlite_inserts_per_s(path: Path, n: int) -> float:
    """INSERT+COMMIT per value, the streams table's shape, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE streams (workflow_id TEXT, key TEXT, seq INTEGER, origin TEXT,"
                 " value BLOB, created_at REAL, PRIMARY KEY (workflow_id, key, seq))"
                 " WITHOUT ROWID")
    value = PAYLOAD.encode()
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?)",
                     ("wf", "tokens", i, str(i), value, time.time()))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def raw_pg_inserts_per_s(url: str, n: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE raw_streams (workflow_id text, key text,"
                           " seq bigint, origin text, value bytea, created_at double precision,"
                           " PRIMARY KEY (workflow_id, key, seq))")
        value = PAYLOAD.encode()
        start = time.perf_counter()
        for i in range(n):
            await conn.execute("INSERT INTO raw_streams VALUES ($1, $2, $3, $4, $5, $6)",
                               "wf", "tokens", i, str(i), value, time.time())
        return n / (time.perf_counter() - start)
    finally:
        await conn.close()


def _row(what: str, store: str, rate: float, raw: float) -> dict[str, Any]:
    return {"bench": f"(s) stream {what}, {store}, read in another process", "value": rate,
            "unit": "values/s", "baseline": raw, "baseline_name": f"raw {store} inserts/s",
            "ratio": rate / raw, "target": "≥ 200 values/s", "ok": rate >= 200}


def run(values: int = 2000) -> list[dict[str, Any]]:
    """Run the stream benchmarks; one row per store and writer."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        raw = raw_sqlite_inserts_per_s(tmpdir / "raw.db", values)
        for what, workflow in (("from a step", from_step), ("from workflow code", from_workflow)):
            db = str(tmpdir / f"{workflow.name}.db")
            rows.append(_row(what, "SQLite", asyncio.run(stream_per_s(db, workflow, values)),
                             raw))
    rows += asyncio.run(_postgres_rows(values))
    return rows


async def _postgres_rows(values: int) -> list[dict[str, Any]]:
    from bench_postgres import _drop, _pg_base

    base = await _pg_base()
    if base is None:
        return []
    raw = await raw_pg_inserts_per_s(base, values)
    rows = []
    for what, workflow in (("from a step", from_step), ("from workflow code", from_workflow)):
        url = f"{base}?schema=bench_streams_{os.getpid()}_{len(rows)}"
        try:
            rows.append(_row(what, "PostgreSQL", await stream_per_s(url, workflow, values), raw))
        finally:
            await _drop(base, url)
    return rows


if __name__ == "__main__":
    from table import print_table

    print_table("streams: a workflow writes, a client in another process reads", run())
